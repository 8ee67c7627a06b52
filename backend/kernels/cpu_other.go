//go:build !amd64

package kernels

// bestLevel: only the pure-Go kernels exist off amd64.
var bestLevel = LevelGo

// asmKernel: there are no assembly kernels off amd64.
func asmKernel(Level) (microKernel, bool) { return microKernel{}, false }

func vecUnary(unaryOp, []float32, []float32) bool             { return false }
func vecBinary(binaryOp, []float32, []float32, []float32) int { return 0 }
