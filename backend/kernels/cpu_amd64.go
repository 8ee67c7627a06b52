package kernels

import "golang.org/x/sys/cpu"

// bestLevel is the highest level this CPU supports: AVX-512 needs AVX512F
// (and OS support for the zmm state, which x/sys/cpu checks), AVX2 needs
// AVX2 and FMA.
var bestLevel = func() Level {
	switch {
	case cpu.X86.HasAVX512F && cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return LevelAVX512
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return LevelAVX2
	}
	return LevelGo
}()

// Assembly micro-kernels (gemm_amd64.s): C[0:mr, 0:16] = (acc ? C : 0) + Apanel·Bpanel.

//go:noescape
func kernel12x16AVX512(k int, a, b, c *float32, ldc int, acc bool)

//go:noescape
func kernel6x16AVX2(k int, a, b, c *float32, ldc int, acc bool)

//go:noescape
func kernel12x16AVX512Direct(k int, a *float32, lda int, b, c *float32, ldc int, acc bool)

//go:noescape
func kernel6x16AVX2Direct(k int, a *float32, lda int, b, c *float32, ldc int, acc bool)

// asmKernel returns the micro-kernel for level l and its row count, or
// false for LevelGo.
func asmKernel(l Level) (microKernel, bool) {
	switch l {
	case LevelAVX512:
		return microKernel{mr: 12, fn: kernel12x16AVX512, direct: kernel12x16AVX512Direct}, true
	case LevelAVX2:
		return microKernel{mr: 6, fn: kernel6x16AVX2, direct: kernel6x16AVX2Direct}, true
	}
	return microKernel{}, false
}
