// Package kernels holds snopt-go's float32 CPU kernels: a packed, blocked
// matrix product (GEMM) with Go-assembly micro-kernels for AVX-512 and
// AVX2+FMA, vectorised element-wise functions (tanh, logistic, exp, log1p,
// add, sub, mul), and pure-Go fallbacks for every other CPU. The package
// knows nothing of GoMLX: package backend hooks these kernels into the
// embedded simplego backend (see backend/engine.go).
//
// The kernel level is chosen once from the CPU (golang.org/x/sys/cpu) and
// can be lowered with SetLevel, for tests and benchmarks that compare
// levels in one process. Every level computes the same function; results
// differ from one another only by floating-point summation order in GEMM
// and by the documented approximation error of the element-wise functions.
package kernels

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// Level is a kernel implementation level, from the portable pure-Go code
// up to AVX-512.
type Level int32

const (
	// LevelGo is plain Go: no SIMD, runs on every GOARCH.
	LevelGo Level = iota
	// LevelAVX2 uses 256-bit AVX2 and FMA3 instructions (amd64 only).
	LevelAVX2
	// LevelAVX512 uses 512-bit AVX-512F instructions (amd64 only).
	LevelAVX512
)

// String returns the level's name as SNOPT_KERNELS spells it.
func (l Level) String() string {
	switch l {
	case LevelGo:
		return "go"
	case LevelAVX2:
		return "avx2"
	case LevelAVX512:
		return "avx512"
	}
	return fmt.Sprintf("Level(%d)", int32(l))
}

// ParseLevel parses a level name ("go", "avx2", "avx512"; case-insensitive).
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "go":
		return LevelGo, nil
	case "avx2":
		return LevelAVX2, nil
	case "avx512":
		return LevelAVX512, nil
	}
	return 0, fmt.Errorf("kernels: unknown level %q (want go, avx2 or avx512)", s)
}

// level is the level in use, at most Best().
var level atomic.Int32

func init() { level.Store(int32(Best())) }

// Best returns the highest level this CPU supports.
func Best() Level { return bestLevel }

// Current returns the level the kernels run at now.
func Current() Level { return Level(level.Load()) }

// SetLevel makes the kernels run at l, or at Best() when the CPU lacks l.
// It returns the level now in use. It is safe to call at any time; a kernel
// already running finishes at the level it started with.
func SetLevel(l Level) Level {
	if l > Best() {
		l = Best()
	}
	if l < LevelGo {
		l = LevelGo
	}
	level.Store(int32(l))
	return l
}
