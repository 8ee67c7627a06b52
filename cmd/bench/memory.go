package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/snopt-go/snopt/zoo/datasets"
)

// memPart is one term of a run's memory estimate and the flag that sets it.
type memPart struct {
	flag  string
	what  string
	bytes float64
}

// baseBytes is what any run holds besides its data and activations: the Go
// runtime, compiled graphs, buffers (measured: 150–300 MiB).
const baseBytes = 300 << 20

// imageShapes are the image problems' H, W, C.
var imageShapes = map[string][3]int{"mnist": {28, 28, 1}, "fashion": {28, 28, 1}, "cifar10": {32, 32, 3}, "svhn": {32, 32, 3}}

// estimateMemory is a coarse upper estimate of a run's peak memory, term by
// term, from the sizes the flags set. It exists to refuse a configuration
// that cannot fit (a mistyped -batch 2e9) before anything is built; the
// measured peaks in docs/benchmarks.md are well below it.
func estimateMemory(o options) []memPart {
	parts := []memPart{{"", "the runtime and compiled graphs", baseBytes}}
	b := float64(o.Batch)
	switch {
	case imageShapes[o.Problem] != [3]int{}:
		s := imageShapes[o.Problem]
		hw, w := float64(s[0]*s[1]), float64(max(o.Width, 1))
		// Per sample: the stem's activations and patch matrices (≈ 8·W·HW
		// values) and the ODE block's stage states at HW/16 (≈ 4·W·HW),
		// float32, forward and adjoint.
		parts = append(parts, memPart{"batch", "the batch's activations", 2 * b * 4 * (12*w*hw + 9*float64(s[2])*hw)},
			// Parameters, gradients, optimizer state and SNOpt's Kronecker
			// factors and eigenbases ((9W)² per 3×3 layer).
			memPart{"width", "the parameters and SNOpt's Kronecker factors", 4 * 708 * w * w})
	case o.Problem == "circle":
		// Per point of the CNF (width 64): stage states of the augmented
		// state and the hypernetwork's activations, float64.
		const perPoint = 8 * 64 * 40
		final := o.FinalSize
		if final <= 0 {
			final = 2000
		}
		parts = append(parts, memPart{"batch", "the batch's activations", b * perPoint},
			memPart{"eval-size", "the periodic evaluation batch", float64(o.EvalSize) * perPoint / 2},
			memPart{"final-size", "the final evaluation batch", float64(final) * perPoint / 2})
	default:
		if sp, ok := seriesProblems[o.Problem]; ok {
			spec := datasets.Archive[o.Problem] // uea: shapes known only from the files
			length, d := float64(max(spec.Length, 1)), float64(2*spec.Channels+1)
			h := float64(sp.hidden)
			if o.Hidden > 0 {
				h = float64(o.Hidden)
			}
			parts = append(parts, memPart{"batch", "the batch's activations", b * 4 * length * (d + 30*h)},
				memPart{"hidden", "the GRU and ODE parameters with optimizer state", 4 * 40 * h * h})
		}
		if tp, ok := tabularProblems[o.Problem]; ok {
			spec := datasets.Tabular[o.Problem]
			w := float64(o.Width)
			if w == 0 {
				w = float64(slices.Max(tp.model().Hidden))
			}
			parts = append(parts, memPart{"batch", "the batch's activations", b * 8 * 40 * (w + float64(spec.Dim))},
				memPart{"width", "the field's parameters with optimizer state", 8 * 40 * w * (w + float64(spec.Dim))})
		}
	}
	return parts
}

// machineMemory is the memory this process may use: the cgroup's limit when
// one is set, else the machine's total (0 when neither is readable).
func machineMemory() (bytes float64, source string) {
	total := 0.0
	if f, err := os.Open("/proc/meminfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if fields := strings.Fields(s.Text()); len(fields) >= 2 && fields[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(fields[1], 64)
				total = kb * 1024
			}
		}
		_ = f.Close()
	}
	source = "this machine's memory"
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64); err == nil && v > 0 && (total == 0 || v < total) {
			total, source = v, "this cgroup's memory limit"
		}
	}
	return total, source
}

// checkMemory refuses a configuration whose estimate exceeds the memory
// this process may use, naming the flag of the largest term, the estimate
// and the memory.
func checkMemory(o options) error {
	avail, source := machineMemory()
	if avail <= 0 {
		return nil
	}
	parts := estimateMemory(o)
	total := 0.0
	for _, p := range parts {
		total += p.bytes
	}
	if total <= avail {
		return nil
	}
	big := slices.MaxFunc(parts, func(a, b memPart) int { return cmpFloat(a.bytes, b.bytes) })
	value := map[string]string{"batch": fmt.Sprint(o.Batch), "width": fmt.Sprint(o.Width), "eval-size": fmt.Sprint(o.EvalSize),
		"final-size": fmt.Sprint(o.FinalSize), "hidden": fmt.Sprint(o.Hidden)}[big.flag]
	return fmt.Errorf("-%s %s: this configuration needs about %s (%s: %s), more than %s (%s); lower -%s (or pass -memory-check=false to try anyway)",
		big.flag, value, humanBytes(total), big.what, humanBytes(big.bytes), humanBytes(avail), source, big.flag)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// humanBytes formats a byte count with a binary unit.
func humanBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if math.IsInf(v, 0) || v >= 1024 {
		return fmt.Sprintf("%.3g %s", v, units[i])
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}
