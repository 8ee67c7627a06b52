package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReproduceProfilesExpand: every profile's runs pass the bench's own
// validation, cover the nine problems with every optimizer and seed, and
// each run has its own log and checkpoint name.
func TestReproduceProfilesExpand(t *testing.T) {
	for name, p := range reproProfiles {
		jobs, err := reproJobs(reproduction{profile: p, out: t.TempDir()})
		require.NoError(t, err, name)
		counts := map[string]int{}
		tags := map[string]bool{}
		problems := map[string]bool{}
		for _, j := range jobs {
			counts[j.kind]++
			assert.False(t, tags[j.o.Out+"/"+j.tag], "%s: tag %s twice", name, j.tag)
			tags[j.o.Out+"/"+j.tag] = true
			assert.Equal(t, j.tag, j.o.RunTag)
			if j.kind == "main" {
				problems[j.o.Problem] = true
				assert.Equal(t, lrFor(j.o, j.optimizer), j.lr)
			}
		}
		assert.Len(t, problems, 9, name)
		assert.Equal(t, 9*3*p.seeds, counts["main"], name)
		assert.Equal(t, 3*len(p.table3), counts["table3"], name)
		sweeps := 0
		for _, lrs := range p.sweepLRs {
			sweeps += len(lrs)
		}
		assert.Equal(t, sweeps*len(p.sweep), counts["sweep"], name)
	}
	assert.Equal(t, 3, reproProfiles["full"].seeds, "the paper averages three trials")
	jobs, err := reproJobs(reproduction{profile: reproProfiles["full"], out: t.TempDir(), only: []string{"circle", "cifar10"}})
	require.NoError(t, err)
	kinds := map[string]int{}
	for _, j := range jobs {
		assert.Contains(t, []string{"circle", "cifar10"}, j.o.Problem)
		kinds[j.kind]++
	}
	assert.Equal(t, map[string]int{"main": 18, "sweep": 18, "table3": 3}, kinds)
}

// TestReproduceFlags: -reproduce takes only its own flags.
func TestReproduceFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-reproduce", "nope"}, `-reproduce "nope": want full or quick`},
		{[]string{"-reproduce", "quick", "-jobs", "0"}, "-jobs 0"},
		{[]string{"-reproduce", "quick", "-problem", "gas"}, "-problem does not go with -reproduce"},
		{[]string{"-reproduce", "quick", "-budget", "1m"}, "-budget does not go with -reproduce"},
		{[]string{"-jobs", "2", "-problem", "gas", "-iters", "1"}, "-page and -jobs go with -reproduce"},
		{[]string{"-reproduce", "full", "-only", "mnist,nope"}, `"nope" is not a problem of the profile`},
	} {
		_, _, err := parseArgs(c.args, &bytes.Buffer{})
		require.Error(t, err, "%v", c.args)
		assert.Contains(t, err.Error(), c.want, "%v", c.args)
	}
	_, md, err := parseArgs([]string{"-reproduce", "quick", "-out", "x", "-page", "y", "-jobs", "2", "-resume"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "quick", md.reproduce)
}

// TestReproduceQuick runs the quick profile end to end: the page has all
// four tables and three figures for the nine problems, the CSV a row per
// run; a second invocation with -resume reuses every finished run and
// writes the same tables.
func TestReproduceQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the quick profile")
	}
	dir := t.TempDir()
	out, page := filepath.Join(dir, "out"), filepath.Join(dir, "page")
	var stdout, stderr bytes.Buffer
	cmd := bench(t, "-reproduce", "quick", "-out", out, "-page", page, "-jobs", "2")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String()+stdout.String())
	md, err := os.ReadFile(filepath.Join(page, "reproduction.md"))
	require.NoError(t, err)
	text := string(md)
	for _, want := range []string{"## Table 2", "## Table 6", "## Table 7", "## Table 3", "## Figure 1/11", "## Figure 9",
		"## Where ours disagrees", "profile `quick`", "**STAND-IN**", "-reproduce quick"} {
		assert.Contains(t, text, want)
	}
	for _, p := range []string{"MNIST", "SVHN", "CIFAR10", "SpoAD", "ArtWR", "CharT", "Circle", "Gas", "Miniboone"} {
		assert.Regexp(t, regexp.MustCompile(`(?m)^\| `+p+` \| [^|]+ \| (accuracy|nll) \| \**[0-9.-]+`), text, "Table 2 row of %s", p)
	}
	for _, f := range []string{"reproduction-fig1.png", "reproduction-fig8.png", "reproduction-fig9.png", "reproduction-circle-density.png"} {
		st, err := os.Stat(filepath.Join(page, f))
		require.NoError(t, err, f)
		assert.Greater(t, st.Size(), int64(1000), f)
	}
	f, err := os.Open(filepath.Join(page, "reproduction-runs.csv"))
	require.NoError(t, err)
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, f.Close())
	require.NoError(t, err)
	jobs, err := reproJobs(reproduction{profile: reproProfiles["quick"], out: out})
	require.NoError(t, err)
	require.Len(t, rows, len(jobs)+1)
	for _, r := range rows[1:] {
		assert.Equal(t, "finished", r[6], "%v", r)
	}

	stdout.Reset()
	cmd = bench(t, "-reproduce", "quick", "-out", out, "-page", page, "-jobs", "2", "-resume")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	assert.Equal(t, len(jobs), strings.Count(stdout.String(), "from an earlier invocation"), stdout.String())
	again, err := os.ReadFile(filepath.Join(page, "reproduction.md"))
	require.NoError(t, err)
	cut := func(s string) string { return s[strings.Index(s, "## Table 2"):] }
	assert.Equal(t, cut(text), cut(string(again)), "the reused runs give the same tables")
}
