package trainer

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"

	"github.com/snopt-go/snopt/internal/hostval"
)

// ErrResume reports a checkpoint that cannot be resumed from: incomplete,
// corrupt, restoring something other than what it records, or written by
// a run with other settings.
var ErrResume = errors.New("trainer: cannot resume")

// Stateful is state outside the context's variables that a checkpoint must
// carry for a resumed run to continue bit-identically: a data stream's
// position and random generator, an end-time policy's averages.
type Stateful interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

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
	// Settings are the run's settings (Config.Settings), compared on resume.
	Settings map[string]string `json:"settings,omitempty"`
	// Params is a hash of every parameter's values, checked after loading.
	Params string `json:"params"`
	// State names the extra state files (Config.State keys).
	State []string `json:"state,omitempty"`
	// StateSums bind each state file to this checkpoint and to the run's
	// settings: SHA-256 of the settings' hash and the file's bytes. A state
	// file from another run (another seed, say) fails the check on resume.
	StateSums map[string]string `json:"state_sums,omitempty"`
}

// settingsHash fingerprints a run's settings (sorted key=value lines).
func settingsHash(settings map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		fmt.Fprintf(h, "%q=%q\n", k, settings[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// stateSum binds a state file's bytes to the settings' hash.
func stateSum(settingsHash string, data []byte) string {
	h := sha256.New()
	h.Write([]byte(settingsHash))
	h.Write([]byte{0})
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// paramsHash fingerprints the stepper's parameters (names, shapes, values)
// and its iteration counter.
func paramsHash(st Updater) (string, error) {
	h := fnv.New64a()
	fmt.Fprintf(h, "iteration %d\n", st.Iteration())
	for _, v := range st.Params() {
		val, err := v.Value()
		if err != nil {
			return "", err
		}
		vals, err := hostval.Float64s(val)
		if err != nil {
			return "", fmt.Errorf("%s: %w", v.ScopeAndName(), err)
		}
		fmt.Fprintf(h, "%s %s\n", v.ScopeAndName(), v.Shape())
		var buf [8]byte
		for _, x := range vals {
			binary.LittleEndian.PutUint64(buf[:], math.Float64bits(x))
			_, _ = h.Write(buf[:])
		}
	}
	return fmt.Sprintf("%016x", h.Sum64()), nil
}

func stateFile(name string) string { return "state-" + name + ".bin" }

const keepCheckpoints = 2

func (c *checkpointer) save(st Updater, res *Result, cfg *Config) error {
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
	hash, err := paramsHash(st)
	if err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	m := meta{Iteration: res.Iterations, Seconds: res.Seconds, Label: res.Label, Settings: cfg.Settings, Params: hash,
		StateSums: map[string]string{}}
	sh := settingsHash(cfg.Settings)
	for _, name := range slices.Sorted(maps.Keys(cfg.State)) {
		data, err := cfg.State[name].MarshalBinary()
		if err != nil {
			return fmt.Errorf("trainer: checkpoint: state %q: %w", name, err)
		}
		m.StateSums[name] = stateSum(sh, data)
		if err := writeSynced(filepath.Join(tmp, stateFile(name)), data); err != nil {
			return err
		}
		m.State = append(m.State, name)
	}
	data, _ := json.Marshal(m)
	if err := writeSynced(filepath.Join(tmp, "trainer.json"), data); err != nil {
		return err
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

// cleanTemps removes what checkpoint writes killed midway left behind: the
// .tmp-* folders and a LATEST.tmp (never the checkpoints themselves).
func (c *checkpointer) cleanTemps() error {
	entries, err := os.ReadDir(c.dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, ".tmp-") || n == "LATEST.tmp" {
			if err := os.RemoveAll(filepath.Join(c.dir, n)); err != nil {
				return fmt.Errorf("trainer: checkpoint: %w", err)
			}
		}
	}
	return nil
}

// latest returns the folder LATEST names, or "" when there is no checkpoint.
func (c *checkpointer) latest() (string, error) {
	name, err := os.ReadFile(filepath.Join(c.dir, "LATEST"))
	if os.IsNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrResume, err)
	}
	return filepath.Join(c.dir, strings.TrimSpace(string(name))), nil
}

// clear removes the checkpoints of an earlier run (a fresh start replaces
// them, as it replaces the log) and reports whether there were any.
func (c *checkpointer) clear() (bool, error) {
	entries, err := os.ReadDir(c.dir)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("trainer: checkpoint: %w", err)
	}
	found := false
	for _, e := range entries {
		if n := e.Name(); n == "LATEST" || n == "LATEST.tmp" || strings.HasPrefix(n, "ckpt-") || strings.HasPrefix(n, ".tmp-") {
			found = true
			if err := os.RemoveAll(filepath.Join(c.dir, n)); err != nil {
				return found, fmt.Errorf("trainer: checkpoint: %w", err)
			}
		}
	}
	return found, nil
}

// restore loads the latest checkpoint into the stepper's context and the
// extra state, if there is a checkpoint, and verifies that it restored what
// the metadata records: the iteration counter, every parameter's values (by
// hash), every extra state, and the same settings. Anything else is
// ErrResume.
func (c *checkpointer) restore(st Updater, cfg *Config) (*meta, error) {
	if err := c.cleanTemps(); err != nil {
		return nil, err
	}
	dir, err := c.latest()
	if dir == "" || err != nil {
		return nil, err
	}
	fail := func(format string, args ...any) (*meta, error) {
		return nil, fmt.Errorf("%w from %s: %s", ErrResume, dir, fmt.Sprintf(format, args...))
	}
	data, err := os.ReadFile(filepath.Join(dir, "trainer.json"))
	if err != nil {
		return fail("missing metadata: %v", err)
	}
	var m meta
	if err := json.Unmarshal(data, &m); err != nil {
		return fail("corrupt metadata: %v", err)
	}
	if m.Params == "" {
		return fail("written by an earlier version that recorded no parameter hash, settings or data position; start afresh without resuming")
	}
	if diff := settingsDiff(m.Settings, cfg.Settings); diff != "" {
		return fail("the checkpoint was written with other settings (%s); resume with the same settings, or start afresh without resuming", diff)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.State)) {
		if !slices.Contains(m.State, name) {
			return fail("no saved state %q", name)
		}
	}
	if _, err := checkpoints.Load(st.Context()).Dir(dir).Done(); err != nil {
		return fail("%v", err)
	}
	hash, err := paramsHash(st)
	if err != nil {
		return fail("%v", err)
	}
	if got := st.Iteration(); got != int64(m.Iteration) {
		return fail("restored iteration counter %d, the metadata says %d", got, m.Iteration)
	}
	if hash != m.Params {
		return fail("the restored parameters differ from those saved (hash %s, saved %s)", hash, m.Params)
	}
	sh := settingsHash(cfg.Settings)
	for name, s := range cfg.State {
		data, err := os.ReadFile(filepath.Join(dir, stateFile(name)))
		if err != nil {
			return fail("state %q: %v", name, err)
		}
		if want, ok := m.StateSums[name]; !ok || stateSum(sh, data) != want {
			return fail("state file %s does not belong to this checkpoint and these settings (its checksum differs from the one recorded); "+
				"a state file copied from another run cannot be resumed — start afresh without resuming", stateFile(name))
		}
		if err := s.UnmarshalBinary(data); err != nil {
			return fail("state %q: %v", name, err)
		}
	}
	return &m, nil
}

// settingsDiff describes the settings whose values differ ("" if none).
func settingsDiff(saved, now map[string]string) string {
	var diffs []string
	union := maps.Clone(saved)
	if union == nil {
		union = map[string]string{}
	}
	maps.Copy(union, now)
	keys := slices.Sorted(maps.Keys(union))
	for _, k := range keys {
		a, okA := saved[k]
		b, okB := now[k]
		if a != b || okA != okB {
			diffs = append(diffs, fmt.Sprintf("%s: saved %q, now %q", k, a, b))
		}
	}
	return strings.Join(diffs, "; ")
}

// writeSynced writes a file and syncs it to disk.
func writeSynced(path string, data []byte) error {
	f, err := os.Create(path)
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
	return nil
}

// writeAtomic writes data to path through a synced temporary file and a rename.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := writeSynced(tmp, data); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
