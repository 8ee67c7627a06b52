package main

import (
	"bytes"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/trainer"
	"github.com/snopt-go/snopt/zoo/datasets"
)

// TestTabularDefaults: gas and miniboone take App. A.4's batch sizes.
func TestTabularDefaults(t *testing.T) {
	for problem, batch := range map[string]int{"gas": 1000, "miniboone": 128} {
		o, _, err := parseArgs([]string{"-problem", problem, "-iters", "1"}, &bytes.Buffer{})
		require.NoError(t, err)
		assert.Equal(t, batch, o.Batch, problem)
		assert.Zero(t, o.Width, "the paper's hidden widths")
		o, _, err = parseArgs([]string{"-problem", problem, "-iters", "1", "-width", "32"}, &bytes.Buffer{})
		require.NoError(t, err)
		assert.Equal(t, 32, o.Width)
	}
	// -width 0 is the paper's widths, as unset: the parent passes it to its
	// workers explicitly.
	o, _, err := parseArgs([]string{"-problem", "gas", "-iters", "1", "-width", "0"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Zero(t, o.Width)
	_, _, err = parseArgs([]string{"-problem", "gas", "-iters", "1", "-width", "-3"}, &bytes.Buffer{})
	assert.ErrorContains(t, err, "-width -3")
}

// TestTabularStandIn: without -data the stand-in is written as .npy files,
// read back and standardised; its exact test NLL is below that of the
// standard Gaussian on the same standardised rows (the true density is the
// best model in expectation), and a second load reuses the files.
func TestTabularStandIn(t *testing.T) {
	o := options{Problem: "gas", Out: t.TempDir(), Seed: 4}
	d, err := loadTabular(o, 500)
	require.NoError(t, err)
	for _, name := range []string{"train", "val", "test"} {
		assert.FileExists(t, filepath.Join(o.Out, "standin-gas-seed4", name+".npy"))
	}
	require.Equal(t, datasets.Tabular["gas"].Train, d.train.Rows)
	require.NotNil(t, d.trueNLL)
	gauss := 0.0
	for i := range 500 {
		for j := range 8 {
			x := d.test.X[i*8+j]
			gauss += (x*x/2 + 0.5*math.Log(2*math.Pi)) / 500
		}
	}
	t.Logf("true NLL %.4f, N(0, I) %.4f", *d.trueNLL, gauss)
	assert.Less(t, *d.trueNLL, gauss-0.5)
	again, err := loadTabular(o, 500)
	require.NoError(t, err)
	require.NotNil(t, again.trueNLL)
	assert.Equal(t, *d.trueNLL, *again.trueNLL)
}

// TestTabularData: -data reads train/val/test as .csv when there is no .npy,
// uses them as they are (no true NLL), and rejects splits whose dimension
// is not the problem's, naming the file.
func TestTabularData(t *testing.T) {
	dir := t.TempDir()
	row := "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8\n1,2,3,4,5,6,7,8.5\n"
	for _, name := range []string{"train", "val", "test"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".csv"), []byte(row), 0o644))
	}
	d, err := loadTabular(options{Problem: "gas", Data: dir}, 0)
	require.NoError(t, err)
	assert.Equal(t, 2, d.test.Rows)
	assert.Equal(t, 8.5, d.test.X[15])
	assert.Nil(t, d.trueNLL)

	var buf bytes.Buffer
	require.NoError(t, datasets.WriteNPY(&buf, &datasets.Matrix{Rows: 1, Cols: 3, X: []float64{1, 2, 3}}))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "val.npy"), buf.Bytes(), 0o644))
	_, err = loadTabular(options{Problem: "gas", Data: dir}, 0)
	assert.ErrorContains(t, err, "val.npy has 3 columns")

	require.NoError(t, os.Remove(filepath.Join(dir, "test.csv")))
	_, err = loadTabular(options{Problem: "gas", Data: dir}, 0)
	assert.ErrorContains(t, err, "neither test.npy nor test.csv")
}

// TestImageProblemsNeedTheirFiles: CIFAR-10 and SVHN cannot be downloaded
// here; a -data folder without their files is refused, naming what is
// missing, and without -data they run on their stand-ins.
func TestImageProblemsNeedTheirFiles(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-problem", "cifar10", "-iters", "1", "-data", dir}, "no data_batch_1.bin there"},
		{[]string{"-problem", "svhn", "-iters", "1", "-data", dir}, "no train_32x32.mat there"},
	} {
		_, _, err := parseArgs(c.args, &bytes.Buffer{})
		require.Error(t, err, "%v", c.args)
		assert.Contains(t, err.Error(), c.want, "%v", c.args)
	}
	for _, p := range []string{"cifar10", "svhn"} {
		_, _, err := parseArgs([]string{"-problem", p, "-iters", "1"}, &bytes.Buffer{})
		assert.NoError(t, err, p)
	}
}

// TestImageStandInEndToEnd: without -data, SVHN trains on its stand-in, and
// the tables say so.
func TestImageStandInEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the bench")
	}
	out := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	cmd := bench(t, "-problem", "svhn", "-iters", "2", "-batch", "8", "-width", "3", "-eval-size", "8", "-final-size", "16",
		"-train-size", "40", "-optimizers", "snopt", "-progress=false", "-out", out)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	assert.Contains(t, stderr.String(), "svhn: 40 training and 16 test images: STAND-IN for SVHN")
	assert.Contains(t, stdout.String(), "Data: STAND-IN for SVHN")
	assert.Regexp(t, `\| snopt \| 0.01 \| 2 \|`, stdout.String())
}

// TestCIFAR10EndToEnd: the bench trains the classifier on CIFAR-10-format
// files (a generated fixture in the binary version's layout).
func TestCIFAR10EndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the bench")
	}
	dir := t.TempDir()
	for i, f := range append(append([]string{}, datasets.CIFAR10Files.Train...), datasets.CIFAR10Files.Test) {
		var b bytes.Buffer
		for r := range 8 {
			b.WriteByte(byte((r + i) % 10))
			for p := range 3072 {
				b.WriteByte(byte((p*7 + r*13 + i) % 251))
			}
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b.Bytes(), 0o644))
	}
	out := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	cmd := bench(t, "-problem", "cifar10", "-data", dir, "-iters", "2", "-batch", "8", "-width", "3", "-eval-size", "8",
		"-optimizers", "snopt", "-progress=false", "-out", out)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	assert.Contains(t, stderr.String(), "cifar10: 40 training and 8 test images")
	assert.Regexp(t, `\| snopt \| 0.01 \| 2 \|`, stdout.String())
}

// TestFFJORDResumeIsBitIdentical: a Gas run killed with SIGKILL and resumed
// logs the same rows as an uninterrupted one. The checkpoint must carry the
// Hutchinson probes' generator besides the data stream, or the resumed
// losses differ.
func TestFFJORDResumeIsBitIdentical(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the bench three times")
	}
	dir := t.TempDir()
	args := func(out string, extra ...string) []string {
		return append([]string{"-problem", "gas", "-width", "8", "-batch", "16", "-tol", "1e-3", "-iters", "30",
			"-checkpoint-every", "4", "-eval-every", "0", "-final-size", "50", "-optimizers", "snopt", "-refresh", "3",
			"-train-size", "2000", "-progress=false", "-out", out}, extra...)
	}
	full, part := filepath.Join(dir, "full"), filepath.Join(dir, "part")
	require.NoError(t, bench(t, args(full)...).Run())
	log := filepath.Join(part, "gas-snopt.csv")
	first := startUntilRows(t, args(part), log, 11)
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	time.Sleep(1500 * time.Millisecond) // the worker dies with its orchestrator
	rows, err := trainer.ReadCSV(log)
	require.NoError(t, err)
	require.Less(t, len(rows), 30, "the run was killed before it finished")
	resumeMatches(t, args(part, "-resume"), log, filepath.Join(full, "gas-snopt.csv"))
}

// TestCirclesDensityIsNormalisedAndPeaksOnTheCircles: the exact density
// integrates to 1 over the plane (midpoint rule on a wide box), and is far
// higher on the circles than at the origin or between them.
func TestCirclesDensityIsNormalisedAndPeaksOnTheCircles(t *testing.T) {
	const lo, hi, n = -1.6, 1.6, 160
	h := (hi - lo) / n
	total := 0.0
	for i := range n {
		for j := range n {
			total += circlesDensity(lo+(float64(i)+0.5)*h, lo+(float64(j)+0.5)*h) * h * h
		}
	}
	assert.InDelta(t, 1, total, 1e-3)
	assert.Greater(t, circlesDensity(1, 0), 100*circlesDensity(0, 0))
	assert.Greater(t, circlesDensity(0, 0.5), 100*circlesDensity(0, 0.75))
	// Half the mass on each circle: the radial densities at the two radii
	// differ by the ratio of the circumferences.
	assert.InDelta(t, 2, circlesDensity(0, 0.5)/circlesDensity(0, 1), 0.02)
	assert.Equal(t, viridis(0), color.RGBA{68, 1, 84, 255})
	assert.Equal(t, viridis(1), color.RGBA{253, 231, 37, 255})
}
