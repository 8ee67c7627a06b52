package trainer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"

	"github.com/snopt-go/snopt/snoptx"
)

// checkpointer writes checkpoints atomically: variables and metadata go to a
// temporary directory, which is renamed into place once complete, and only
// then does the LATEST pointer (itself written by rename) move to it. A crash
// at any point leaves the previous checkpoint intact and LATEST pointing at it.
type checkpointer struct{ dir string }

// meta is the trainer state beside the variables.
type meta struct {
	Iteration int     `json:"iteration"`
	Seconds   float64 `json:"seconds"`
	Label     string  `json:"label"`
}

const keepCheckpoints = 2

func (c *checkpointer) save(st *snoptx.Stepper, res *Result) error {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	tmp, err := os.MkdirTemp(c.dir, ".tmp-")
	if err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op once renamed
	h, err := checkpoints.Build(st.Context()).Dir(tmp).Keep(1).Done()
	if err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	if err := h.Save(); err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	data, _ := json.Marshal(meta{Iteration: res.Iterations, Seconds: res.Seconds, Label: res.Label})
	if err := os.WriteFile(filepath.Join(tmp, "trainer.json"), data, 0o644); err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	name := fmt.Sprintf("ckpt-%09d", res.Iterations)
	final := filepath.Join(c.dir, name)
	_ = os.RemoveAll(final)
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	if err := writeAtomic(filepath.Join(c.dir, "LATEST"), []byte(name)); err != nil {
		return err
	}
	return c.prune(name)
}

// prune keeps the newest checkpoints.
func (c *checkpointer) prune(latest string) error {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "ckpt-") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for len(names) > keepCheckpoints {
		if names[0] != latest {
			_ = os.RemoveAll(filepath.Join(c.dir, names[0]))
		}
		names = names[1:]
	}
	return nil
}

// restore loads the latest checkpoint into the stepper's context, if any.
func (c *checkpointer) restore(st *snoptx.Stepper) (*meta, error) {
	name, err := os.ReadFile(filepath.Join(c.dir, "LATEST"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trainer: resume: %w", err)
	}
	dir := filepath.Join(c.dir, strings.TrimSpace(string(name)))
	data, err := os.ReadFile(filepath.Join(dir, "trainer.json"))
	if err != nil {
		return nil, fmt.Errorf("trainer: resume from %s: %w", dir, err)
	}
	var m meta
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("trainer: resume from %s: corrupt metadata: %w", dir, err)
	}
	if _, err := checkpoints.Build(st.Context()).Dir(dir).Done(); err != nil {
		return nil, fmt.Errorf("trainer: resume from %s: %w", dir, err)
	}
	return &m, nil
}

// writeAtomic writes data to path through a temporary file and a rename.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("trainer: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("trainer: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	return os.Rename(tmp, path)
}
