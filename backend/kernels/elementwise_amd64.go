package kernels

//go:noescape
func tanhAVX2(dst, src *float32, n int)

//go:noescape
func expAVX2(dst, src *float32, n int)

//go:noescape
func logisticAVX2(dst, src *float32, n int)

//go:noescape
func log1pAVX2(dst, src *float32, n int)

//go:noescape
func addAVX2(dst, a, b *float32, n int)

//go:noescape
func subAVX2(dst, a, b *float32, n int)

//go:noescape
func mulAVX2(dst, a, b *float32, n int)

var unaryAVX2 = [...]func(dst, src *float32, n int){opTanh: tanhAVX2, opExp: expAVX2, opLogistic: logisticAVX2, opLog1p: log1pAVX2}

// vecUnary runs op with AVX2; the caller checked the lengths.
func vecUnary(op unaryOp, dst, src []float32) bool {
	n := len(src)
	f := unaryAVX2[op]
	full := n &^ 7
	if full > 0 {
		f(&dst[0], &src[0], full)
	}
	if full < n {
		var buf [8]float32
		copy(buf[:], src[full:n])
		f(&buf[0], &buf[0], 8)
		copy(dst[full:n], buf[:n-full])
	}
	return true
}

var binaryAVX2 = [...]func(dst, a, b *float32, n int){opAdd: addAVX2, opSub: subAVX2, opMul: mulAVX2}

// vecBinary runs op with AVX2 on the whole blocks of 8 and returns how many
// elements it did.
func vecBinary(op binaryOp, dst, a, b []float32) int {
	full := len(a) &^ 7
	if full > 0 {
		binaryAVX2[op](&dst[0], &a[0], &b[0], full)
	}
	return full
}
