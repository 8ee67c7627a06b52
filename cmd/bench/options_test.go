package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/trainer"
)

// TestEveryOptionReachesTheWorker: every field of options, set to a value
// other than its zero, comes back equal through the file a worker reads —
// an option added later cannot be dropped on the way.
func TestEveryOptionReachesTheWorker(t *testing.T) {
	var o options
	v := reflect.ValueOf(&o).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("x" + v.Type().Field(i).Name)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 3))
		case reflect.Uint64:
			f.SetUint(uint64(i + 5))
		case reflect.Float64:
			f.SetFloat(float64(i) + 0.25)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Map:
			f.Set(reflect.ValueOf(lrFlags{"snopt": 0.5}))
		default:
			t.Fatalf("options.%s has kind %s: teach this test (and check the worker's file carries it)", v.Type().Field(i).Name, f.Kind())
		}
		require.False(t, f.IsZero(), v.Type().Field(i).Name)
	}
	data, err := json.Marshal(o)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "opts.json")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	got, md, err := parseArgs([]string{"-worker", "r.json", "-worker-parent", "7", "-worker-options", path}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "r.json", md.worker)
	assert.Equal(t, o, got)
	for i := range v.NumField() {
		assert.NotEmpty(t, v.Type().Field(i).Tag.Get("json"), "options.%s needs a json tag", v.Type().Field(i).Name)
	}
}

// ueaFixture writes a small archive-format data set the way the real
// unequal-length files look: @equalLength false, numbered labels whose
// @classLabel order differs between the two files, a missing value.
func ueaFixture(t *testing.T, dir, name string) {
	t.Helper()
	write := func(suffix, classes string, n int, shift int) {
		var b strings.Builder
		fmt.Fprintf(&b, "#A fixture in the archive's format\r\n@problemName %s\r\n@timeStamps false\r\n@missing true\r\n@univariate false\r\n"+
			"@dimensions 2\r\n@equalLength false\r\n@classLabel true %s\r\n@data\r\n", name, classes)
		for i := range n {
			c := (i + shift) % 3
			length := 5 + (i % 4)
			for d := range 2 {
				for k := range length {
					if k > 0 {
						b.WriteString(",")
					}
					if i == 2 && d == 1 && k == 1 {
						b.WriteString("?")
						continue
					}
					fmt.Fprintf(&b, "%g", float64(c*3+d)+0.1*float64(k)+0.01*float64(i%5))
				}
				b.WriteString(":")
			}
			fmt.Fprintf(&b, "%d\r\n", c+1)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+suffix), []byte(b.String()), 0o644))
	}
	write("_TRAIN.ts", "1 2 3", 30, 0)
	write("_TEST.ts", "3 1 2", 21, 1)
}

// TestUEAProblemRunsAnyArchiveSet: -problem uea trains on a data set of the
// archive's format found in -data (unequal lengths, labels listed in
// another order in the test file), with the paper's split, and says so.
func TestUEAProblemRunsAnyArchiveSet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the bench")
	}
	data := t.TempDir()
	ueaFixture(t, data, "Tiny")
	out := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	cmd := bench(t, "-problem", "uea", "-data", data, "-iters", "3", "-batch", "8", "-hidden", "6", "-split", "paper",
		"-optimizers", "snopt", "-progress=false", "-out", out)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	go func() { done <- cmd.Run() }()
	select {
	case err := <-done:
		require.NoError(t, err, stderr.String())
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("timed out")
	}
	assert.Contains(t, stdout.String(), "Data: the archive's Tiny_TRAIN.ts and Tiny_TEST.ts from "+data)
	assert.Contains(t, stdout.String(), "the paper's split: both files merged and re-split 70/15/15 stratified")
	assert.Contains(t, stdout.String(), "35 training, 8 validation (periodic evaluations), 8 test series")
	assert.Contains(t, stdout.String(), "unequal lengths padded to 8 steps")
	assert.Contains(t, stdout.String(), "| snopt | 0.005 | 3 |")
	// Two data sets in one folder need -uea-name.
	ueaFixture(t, data, "Other")
	_, _, err := parseArgs([]string{"-problem", "uea", "-data", data, "-iters", "1"}, &bytes.Buffer{})
	require.ErrorContains(t, err, "holds 2 data sets (Other, Tiny): choose one with -uea-name")
}

// TestSweepKeepsEachRatesLog: every learning rate of a sweep gets its own
// log and checkpoint folder (one rate's run no longer replaces another's).
func TestSweepKeepsEachRatesLog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the bench")
	}
	out := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	cmd := bench(t, "-problem", "circle", "-sweep", "-iters", "3", "-grid", "0.01,0.03", "-optimizers", "adam",
		"-batch", "16", "-eval-size", "16", "-final-size", "32", "-progress=false", "-out", out)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	for _, lr := range []string{"0.01", "0.03"} {
		recs, err := trainer.ReadCSV(filepath.Join(out, "sweep-circle-adam-"+lr+".csv"))
		require.NoError(t, err, lr)
		assert.Len(t, recs, 3, lr)
		_, err = os.Stat(filepath.Join(out, "sweep-circle-adam-"+lr+"-ckpt", "LATEST"))
		assert.NoError(t, err, lr)
	}
	assert.NotContains(t, stderr.String(), "removed the earlier checkpoints")
}
