package kernels

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// A Mat is a read-only float32 matrix view: element (i, j) is
// Data[i*RowStride + j*ColStride]. A row-major [r, c] array is
// Mat{data, c, 1}; its transpose, read in place, is Mat{data, 1, c}.
type Mat struct {
	// Data holds the elements; element (i, j) is Data[i·RowStride + j·ColStride].
	Data []float32
	// RowStride and ColStride are the steps between rows and between columns.
	RowStride, ColStride int
}

// microKernel computes C[0:mr, 0:nr] = (acc ? C : 0) + Σ_p a[p*mr+r]·b[p*nr+j]
// over p < k, for an A panel packed mr rows per step of k and a B panel
// packed nr columns per step of k; C has row stride ldc.
//
// direct, when not nil, is the same kernel reading mr rows of a row-major A
// in place (row stride lda) instead of a packed panel.
type microKernel struct {
	mr     int
	fn     func(k int, a, b, c *float32, ldc int, acc bool)
	direct func(k int, a *float32, lda int, b, c *float32, ldc int, acc bool)
}

const (
	// nr is the width of a packed B panel: 16 float32 = one zmm, two ymm.
	nr = 16
	// kc is the depth of one pass over k: an A block of mc×kc and a B panel
	// of kc×nr (16 KiB) stay in L2 and L1.
	kc = 256
	// mcPanels is the number of mr-row panels in one packed A block.
	mcPanels = 8
	// minParallelWork is the number of multiply-adds below which a product
	// runs on the calling goroutine: starting and joining a second one costs
	// a few microseconds, the time of ~10⁵ multiply-adds at these speeds.
	minParallelWork = 1 << 17
	// goMR is the row count of the pure-Go micro-kernel.
	goMR = 4
	// maxDirectPanels is the most column panels for which A is read in
	// place rather than packed: packing costs one pass over A, which only
	// pays when each packed panel is reused for many column panels.
	maxDirectPanels = 4
)

// kernelAt returns the micro-kernel for level l.
func kernelAt(l Level) microKernel {
	if mk, ok := asmKernel(l); ok {
		return mk
	}
	return microKernel{mr: goMR, fn: kernel4x16Go}
}

// kernel4x16Go is the portable micro-kernel (4 rows × 16 columns).
func kernel4x16Go(k int, a, b, c *float32, ldc int, acc bool) {
	var t [goMR][nr]float32
	if k > 0 {
		as := unsafe.Slice(a, k*goMR)
		bs := unsafe.Slice(b, k*nr)
		for p := 0; p < k; p++ {
			bp := (*[nr]float32)(bs[p*nr : p*nr+nr])
			ap := (*[goMR]float32)(as[p*goMR : p*goMR+goMR])
			for r := range goMR {
				ar := ap[r]
				tr := &t[r]
				for j := range nr {
					tr[j] += ar * bp[j]
				}
			}
		}
	}
	cs := unsafe.Slice(c, (goMR-1)*ldc+nr)
	for r := range goMR {
		row := (*[nr]float32)(cs[r*ldc : r*ldc+nr])
		if acc {
			for j := range nr {
				row[j] += t[r][j]
			}
		} else {
			*row = t[r]
		}
	}
}

// bufPool recycles packing buffers.
var bufPool sync.Pool

func getBuf(n int) *[]float32 {
	if p, ok := bufPool.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float32, n)
	return &s
}

func putBuf(p *[]float32) { bufPool.Put(p) }

// span returns the largest flat index a view of r×c elements reads, plus 1.
func (a Mat) span(r, c int) int {
	if r == 0 || c == 0 {
		return 0
	}
	return (r-1)*a.RowStride + (c-1)*a.ColStride + 1
}

// check panics (with a message naming the operand) when a view of r×c
// elements would read outside its slice: the assembly kernels read through
// raw pointers, so every bound is checked here first.
func (a Mat) check(name string, r, c int) {
	if a.RowStride < 0 || a.ColStride < 0 {
		panic(fmt.Sprintf("kernels: %s has negative strides (%d, %d)", name, a.RowStride, a.ColStride))
	}
	if s := a.span(r, c); s > len(a.Data) {
		panic(fmt.Sprintf("kernels: %s view %d×%d with strides (%d, %d) needs %d elements, has %d",
			name, r, c, a.RowStride, a.ColStride, s, len(a.Data)))
	}
}

// Gemm computes c = a·b for a of m×k and b of k×n, both read in place
// through their strides, and c a row-major m×n array (len(c) ≥ m·n),
// which is overwritten. It panics when a view is out of its slice's bounds.
//
// B is packed into 16-column panels, A into mr-row panels per block of
// kc = 256 steps of k, and a register-blocked micro-kernel (12×16 zmm for
// AVX-512, 6×16 ymm for AVX2, 4×16 scalar Go) computes each tile. Products
// of at least minParallelWork multiply-adds are split over GOMAXPROCS
// goroutines, by row blocks when there are enough rows, else by panels.
func Gemm(m, n, k int, a, b Mat, c []float32) {
	GemmBatch(1, m, n, k, a, 0, b, 0, c)
}

// GemmBatch computes c[i] = a[i]·b[i] for i < batch, where operand i
// starts batchStride elements after operand i-1 (a batch stride of 0
// reuses one operand for every i) and c is batch row-major m×n arrays.
func GemmBatch(batch, m, n, k int, a Mat, aBatchStride int, b Mat, bBatchStride int, c []float32) {
	if batch <= 0 {
		return
	}
	if aBatchStride < 0 || bBatchStride < 0 {
		panic("kernels: negative batch stride")
	}
	a.check("A", m, k)
	b.check("B", k, n)
	if need := (batch-1)*aBatchStride + a.span(m, k); need > len(a.Data) {
		panic(fmt.Sprintf("kernels: A batch of %d with stride %d needs %d elements, has %d", batch, aBatchStride, need, len(a.Data)))
	}
	if need := (batch-1)*bBatchStride + b.span(k, n); need > len(b.Data) {
		panic(fmt.Sprintf("kernels: B batch of %d with stride %d needs %d elements, has %d", batch, bBatchStride, need, len(b.Data)))
	}
	if len(c) < batch*m*n {
		panic(fmt.Sprintf("kernels: C has %d elements, needs %d×%d×%d", len(c), batch, m, n))
	}
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		clear(c[:batch*m*n])
		return
	}
	mk := kernelAt(Current())
	threads := runtime.GOMAXPROCS(0)
	at := func(x Mat, stride, i int) Mat {
		return Mat{Data: x.Data[i*stride:], RowStride: x.RowStride, ColStride: x.ColStride}
	}
	// Large elements: one at a time, each split over the cores. Small ones:
	// whole elements per goroutine.
	if threads == 1 || batch == 1 || m*n*k >= minParallelWork || batch*m*n*k < minParallelWork {
		for i := range batch {
			gemm(mk, m, n, k, at(a, aBatchStride, i), at(b, bBatchStride, i), c[i*m*n:(i+1)*m*n], threads)
		}
		return
	}
	threads = min(threads, batch)
	var wg sync.WaitGroup
	for t := range threads {
		lo, hi := t*batch/threads, (t+1)*batch/threads
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				gemm(mk, m, n, k, at(a, aBatchStride, i), at(b, bBatchStride, i), c[i*m*n:(i+1)*m*n], 1)
			}
		})
	}
	wg.Wait()
}

// gemm is Gemm after the checks, with at most threads goroutines.
func gemm(mk microKernel, m, n, k int, a, b Mat, c []float32, threads int) {
	panels := (n + nr - 1) / nr
	bpBuf := getBuf(panels * k * nr)
	defer putBuf(bpBuf)
	bp := *bpBuf
	if m*n*k < minParallelWork {
		threads = 1
	}
	// Pack B (k×n work, shared read-only by every goroutine).
	if threads > 1 && panels >= threads {
		var wg sync.WaitGroup
		for t := range threads {
			lo, hi := t*panels/threads, (t+1)*panels/threads
			wg.Go(func() { packB(bp, b, k, n, lo, hi) })
		}
		wg.Wait()
	} else {
		packB(bp, b, k, n, 0, panels)
	}
	if threads == 1 {
		gemmBlock(mk, a, bp, c, m, n, k, 0, m, 0, panels)
		return
	}
	var wg sync.WaitGroup
	rowPanels := (m + mk.mr - 1) / mk.mr
	if rowPanels >= 2*threads {
		for t := range threads {
			lo, hi := t*rowPanels/threads*mk.mr, min(m, (t+1)*rowPanels/threads*mk.mr)
			wg.Go(func() { gemmBlock(mk, a, bp, c, m, n, k, lo, hi, 0, panels) })
		}
	} else {
		threads = min(threads, panels)
		for t := range threads {
			lo, hi := t*panels/threads, (t+1)*panels/threads
			wg.Go(func() { gemmBlock(mk, a, bp, c, m, n, k, 0, m, lo, hi) })
		}
	}
	wg.Wait()
}

// packB writes B's column panels [p0, p1) into bp: panel p holds columns
// [16p, 16p+16) as k rows of 16 (zero past column n).
func packB(bp []float32, b Mat, k, n, p0, p1 int) {
	for p := p0; p < p1; p++ {
		j0 := p * nr
		cols := min(nr, n-j0)
		dst := bp[p*k*nr : (p+1)*k*nr]
		switch {
		case cols == nr && b.ColStride == 1:
			for q := range k {
				copy(dst[q*nr:q*nr+nr], b.Data[q*b.RowStride+j0:q*b.RowStride+j0+nr])
			}
		case b.RowStride == 1:
			// Bᵀ stored row-major: column j is contiguous in k.
			if cols < nr {
				clear(dst)
			}
			for j := range cols {
				src := b.Data[(j0+j)*b.ColStride:]
				src = src[:k]
				for q, v := range src {
					dst[q*nr+j] = v
				}
			}
		default:
			for q := range k {
				row := dst[q*nr : q*nr+nr]
				base := q*b.RowStride + j0*b.ColStride
				for j := range cols {
					row[j] = b.Data[base+j*b.ColStride]
				}
				clear(row[cols:])
			}
		}
	}
}

// packA writes rows [i0, i0+rows) and steps [q0, q0+kb) of A into ap as
// mr-row panels: panel r holds kb steps of mr values (zero past the last row).
func packA(ap []float32, a Mat, mr, i0, rows, q0, kb int) {
	for r0 := 0; r0 < rows; r0 += mr {
		dst := ap[(r0/mr)*kb*mr : (r0/mr+1)*kb*mr]
		h := min(mr, rows-r0)
		if a.RowStride == 1 {
			// Aᵀ stored row-major: for each step, the rows are contiguous.
			for q := range kb {
				src := a.Data[(q0+q)*a.ColStride+i0+r0:]
				copy(dst[q*mr:q*mr+h], src[:h])
				clear(dst[q*mr+h : q*mr+mr])
			}
			continue
		}
		if h < mr {
			clear(dst)
		}
		for r := range h {
			base := (i0+r0+r)*a.RowStride + q0*a.ColStride
			if a.ColStride == 1 {
				src := a.Data[base : base+kb]
				for q, v := range src {
					dst[q*mr+r] = v
				}
			} else {
				for q := range kb {
					dst[q*mr+r] = a.Data[base+q*a.ColStride]
				}
			}
		}
	}
}

// gemmBlock computes rows [i0, i1) and column panels [p0, p1) of c = a·b,
// with B already packed in bp.
func gemmBlock(mk microKernel, a Mat, bp, c []float32, m, n, k, i0, i1, p0, p1 int) {
	mr := mk.mr
	mc := mr * mcPanels
	apBuf := getBuf(mc * min(kc, k))
	defer putBuf(apBuf)
	ap := *apBuf
	var tile [12 * nr]float32
	direct := mk.direct != nil && a.ColStride == 1 && p1-p0 <= maxDirectPanels
	for q0 := 0; q0 < k; q0 += kc {
		kb := min(kc, k-q0)
		acc := q0 > 0
		for ic := i0; ic < i1; ic += mc {
			mb := min(mc, i1-ic)
			if direct {
				gemmDirect(mk, a, bp, c, n, k, ic, mb, q0, kb, p0, p1, acc, ap, &tile)
				continue
			}
			packA(ap, a, mr, ic, mb, q0, kb)
			for p := p0; p < p1; p++ {
				bpanel := bp[p*k*nr+q0*nr:]
				j0 := p * nr
				cols := min(nr, n-j0)
				for ir := 0; ir < mb; ir += mr {
					rows := min(mr, mb-ir)
					apanel := ap[(ir/mr)*kb*mr:]
					ci := (ic+ir)*n + j0
					if rows == mr && cols == nr && ci+(mr-1)*n+nr <= len(c) {
						mk.fn(kb, &apanel[0], &bpanel[0], &c[ci], n, acc)
						continue
					}
					mk.fn(kb, &apanel[0], &bpanel[0], &tile[0], nr, false)
					flushTile(c[ci:], n, &tile, rows, cols, acc)
				}
			}
		}
	}
}

// gemmDirect is gemmBlock's inner loops for rows [ic, ic+mb) and steps
// [q0, q0+kb) with A read in place; a partial last row panel is packed.
func gemmDirect(mk microKernel, a Mat, bp, c []float32, n, k, ic, mb, q0, kb, p0, p1 int, acc bool, ap []float32, tile *[12 * nr]float32) {
	mr := mk.mr
	for ir := 0; ir < mb; ir += mr {
		rows := min(mr, mb-ir)
		if rows < mr {
			packA(ap, a, mr, ic+ir, rows, q0, kb)
		}
		arow := &a.Data[(ic+ir)*a.RowStride+q0]
		for p := p0; p < p1; p++ {
			bpanel := &bp[p*k*nr+q0*nr]
			j0 := p * nr
			cols := min(nr, n-j0)
			ci := (ic+ir)*n + j0
			if rows == mr && cols == nr {
				mk.direct(kb, arow, a.RowStride, bpanel, &c[ci], n, acc)
				continue
			}
			if rows == mr {
				mk.direct(kb, arow, a.RowStride, bpanel, &tile[0], nr, false)
			} else {
				mk.fn(kb, &ap[0], bpanel, &tile[0], nr, false)
			}
			flushTile(c[ci:], n, tile, rows, cols, acc)
		}
	}
}

// flushTile writes the rows × cols corner of a scratch tile into c (row
// stride n), adding to it when acc.
func flushTile(c []float32, n int, tile *[12 * nr]float32, rows, cols int, acc bool) {
	for r := range rows {
		dst := c[r*n : r*n+cols]
		src := tile[r*nr : r*nr+cols]
		if acc {
			for j, v := range src {
				dst[j] += v
			}
		} else {
			copy(dst, src)
		}
	}
}
