package backend

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/pkg/errors"

	"github.com/snopt-go/snopt/backend/kernels"
)

// The engine: snopt-go's float32 kernels (package kernels) run simplego's
// ops in place of its own executors.
//
// simplego executes each node of a compiled graph through a package-level
// table of executors indexed by op type. The engine reaches that table with
// //go:linkname and replaces the entries for the ops it implements with
// wrappers. A wrapper runs the engine's kernel only for a backend the engine
// is enabled on (backend.New's, unless SNOPT_KERNELS=off) and only for
// inputs it handles (float32, supported layouts); everything else goes to
// the executor simplego had, so a plain simplego backend in the same
// process computes exactly as before. docs/engine.md says why this hook was
// chosen over a backend of our own.
//
// The wrappers read two unexported things: a node's output shape and data
// (simplego.Node) and a DotGeneral node's axes. They read them through
// mirror types whose fields are checked against the real ones with reflect
// (names, offsets, types, sizes) before anything is installed, and a
// self-test then runs a product and a tanh through the installed table and
// compares with the executors simplego had. On any mismatch nothing stays
// installed, plain simplego runs, and one line on standard error says so.

// KernelsEnvVar selects the engine: "on" or unset (the best kernels this CPU
// runs), "off" (plain simplego), or a level to force: "go", "avx2",
// "avx512" (capped at what the CPU supports).
const KernelsEnvVar = "SNOPT_KERNELS"

// executor is the type of simplego's node executors.
type executor = func(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

// simplegoExecutors is simplego's table of node executors, by op type.
//
//go:linkname simplegoExecutors github.com/gomlx/gomlx/backends/simplego.nodeExecutors
var simplegoExecutors [backends.OpTypeLast]executor

// nodeMirror mirrors simplego.Node; verifyMirrors checks every field.
type nodeMirror struct {
	builderIdx         int
	inputs             []*simplego.Node
	opType             backends.OpType
	shape              shapes.Shape
	builder            *simplego.Builder
	multiOutputsShapes []shapes.Shape
	multiOutputsNodes  []*simplego.Node
	isNodeSelectOutput bool
	selectOutputIdx    int
	data               any
}

// dotGeneralMirror mirrors simplego's DotGeneral node data.
type dotGeneralMirror struct {
	lhsContractingAxes, lhsBatchAxes                       []int
	rhsContractingAxes, rhsBatchAxes                       []int
	batchSize, lhsCrossSize, rhsCrossSize, contractingSize int
	lhsBlockedShape, rhsBlockedShape, outputBlockedShape   shapes.Shape
}

func mirrorOf(n *simplego.Node) *nodeMirror { return (*nodeMirror)(unsafe.Pointer(n)) }

// engine is the installed state.
var engine struct {
	once sync.Once
	// err is why the engine is not installed (nil when it is).
	err error
	// orig holds simplego's executors for the ops the engine replaced.
	orig [backends.OpTypeLast]executor
	// dataTypes holds the dynamic type of the node data of each op whose
	// data the engine reads, as verifyMirrors found them.
	dataTypes map[backends.OpType]reflect.Type
	// enabled lists the backends the kernels run for: copied on write, read
	// with one atomic load and a scan of a few pointers on every op.
	enabled   atomic.Pointer[[]*simplego.Backend]
	enabledMu sync.Mutex
	// noticeOnce makes the notice of a failed install print once.
	noticeOnce sync.Once
	// ran and fellBack count, per op type, the executions the engine ran
	// and those it handed to simplego (for an enabled backend).
	ran, fellBack [backends.OpTypeLast]atomic.Int64
}

// fallback hands a node to simplego's executor, counting it when the
// engine was on for b.
func fallback(op backends.OpType, b *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	if on(b) {
		engine.fellBack[op].Add(1)
	}
	return engine.orig[op](b, node, inputs, owned)
}

// EngineError reports why the engine could not be installed; simplego's
// own executors then run.
type EngineError struct{ Cause string }

func (e *EngineError) Error() string { return "kernel engine not installed: " + e.Cause }

// sameFields checks that mirror has the fields of real, in order, with the
// same names, offsets and types, and the same size.
func sameFields(mirror, real reflect.Type) error {
	if mirror.NumField() != real.NumField() || mirror.Size() != real.Size() {
		return errors.Errorf("%s has %d fields and %d bytes, its mirror %d and %d",
			real, real.NumField(), real.Size(), mirror.NumField(), mirror.Size())
	}
	for i := range mirror.NumField() {
		mf, rf := mirror.Field(i), real.Field(i)
		if mf.Name != rf.Name || mf.Offset != rf.Offset || mf.Type != rf.Type {
			return errors.Errorf("%s field %d is %s %s at %d, its mirror %s %s at %d",
				real, i, rf.Name, rf.Type, rf.Offset, mf.Name, mf.Type, mf.Offset)
		}
	}
	return nil
}

// typeOf returns the dynamic type of a node's data.
func typeOf(d any) reflect.Type { return reflect.TypeOf(d) }

// pointerOf returns the pointer held by d, a pointer-typed interface value.
func pointerOf(d any) unsafe.Pointer { return reflect.ValueOf(d).UnsafePointer() }

// probe is one node built by verifyMirrors, and the mirror of its data.
type probe struct {
	op     backends.OpType
	mirror reflect.Type // nil: the data is a plain value of type value
	value  reflect.Type
	build  func(bld backends.Builder, x, idx, upd backends.Op) (backends.Op, error)
	// check reads the data through the mirror and says whether it holds
	// what build asked for.
	check func(data any) bool
}

var probes = []probe{
	{op: backends.OpTypeDotGeneral, mirror: reflect.TypeFor[dotGeneralMirror](),
		build: func(bld backends.Builder, x, _, _ backends.Op) (backends.Op, error) {
			return bld.DotGeneral(x, []int{1}, nil, x, []int{1}, nil)
		},
		check: func(d any) bool {
			dg := (*dotGeneralMirror)(pointerOf(d))
			return slices.Equal(dg.lhsContractingAxes, []int{1}) && slices.Equal(dg.rhsContractingAxes, []int{1}) &&
				dg.batchSize == 1 && dg.lhsCrossSize == 2 && dg.rhsCrossSize == 2 && dg.contractingSize == 3
		}},
	{op: backends.OpTypeSlice, mirror: reflect.TypeFor[sliceMirror](),
		build: func(bld backends.Builder, x, _, _ backends.Op) (backends.Op, error) {
			return bld.Slice(x, []int{0, 1}, []int{2, 3}, []int{1, 2})
		},
		check: func(d any) bool {
			sm := (*sliceMirror)(pointerOf(d))
			return slices.Equal(sm.starts, []int{0, 1}) && slices.Equal(sm.limits, []int{2, 3}) && slices.Equal(sm.strides, []int{1, 2})
		}},
	{op: backends.OpTypeConcatenate, value: reflect.TypeFor[int](),
		build: func(bld backends.Builder, x, _, _ backends.Op) (backends.Op, error) { return bld.Concatenate(1, x, x) },
		check: func(d any) bool { return d.(int) == 1 }},
	{op: backends.OpTypeGather, mirror: reflect.TypeFor[gatherMirror](),
		build: func(bld backends.Builder, x, idx, _ backends.Op) (backends.Op, error) {
			return bld.Gather(x, idx, 1, []int{1}, []int{0}, []int{0}, []int{1, 3}, false)
		},
		check: func(d any) bool {
			g := (*gatherMirror)(pointerOf(d))
			return g.indexVectorAxis == 1 && slices.Equal(g.offsetOutputAxes, []int{1}) && slices.Equal(g.collapsedSlicesAxes, []int{0}) &&
				slices.Equal(g.startIndexMap, []int{0}) && slices.Equal(g.sliceSizes, []int{1, 3})
		}},
	{op: backends.OpTypeScatterSum, mirror: reflect.TypeFor[scatterMirror](),
		build: func(bld backends.Builder, x, idx, upd backends.Op) (backends.Op, error) {
			return bld.ScatterSum(x, idx, upd, 1, []int{1}, []int{0}, []int{0}, false, false)
		},
		check: func(d any) bool {
			sc := (*scatterMirror)(pointerOf(d))
			return sc.indexVectorAxis == 1 && slices.Equal(sc.updateWindowAxes, []int{1}) &&
				slices.Equal(sc.insertedWindowAxes, []int{0}) && slices.Equal(sc.scatterAxesToOperandAxes, []int{0})
		}},
}

// verifyMirrors checks the mirror types against simplego's: the node type
// field by field, and for each op whose data the engine reads, a node built
// on a probe backend, its data's type field by field and the values read
// through the mirror. It returns the data types found, by op.
func verifyMirrors() (map[backends.OpType]reflect.Type, error) {
	if err := sameFields(reflect.TypeFor[nodeMirror](), reflect.TypeFor[simplego.Node]()); err != nil {
		return nil, err
	}
	b, err := simplego.New("ops_sequential")
	if err != nil {
		return nil, errors.Wrap(err, "creating a probe backend")
	}
	defer b.Finalize()
	bld := b.Builder("engine-probe")
	x, err := bld.Parameter("x", shapes.Make(dtypes.Float32, 2, 3), nil)
	if err != nil {
		return nil, err
	}
	idx, err := bld.Parameter("idx", shapes.Make(dtypes.Int32, 4, 1), nil)
	if err != nil {
		return nil, err
	}
	upd, err := bld.Parameter("upd", shapes.Make(dtypes.Float32, 4, 3), nil)
	if err != nil {
		return nil, err
	}
	types := make(map[backends.OpType]reflect.Type)
	for _, p := range probes {
		out, err := p.build(bld, x, idx, upd)
		if err != nil {
			return nil, errors.WithMessagef(err, "building a %s probe", p.op)
		}
		n, ok := out.(*simplego.Node)
		if !ok {
			return nil, errors.Errorf("simplego's %s returned a %T", p.op, out)
		}
		for mirrorOf(n).opType != p.op {
			if len(mirrorOf(n).inputs) != 1 {
				return nil, errors.Errorf("no %s node under simplego's %s (found %s)", p.op, p.op, mirrorOf(n).opType)
			}
			n = mirrorOf(n).inputs[0]
		}
		data := mirrorOf(n).data
		t := reflect.TypeOf(data)
		switch {
		case p.mirror == nil:
			if t != p.value {
				return nil, errors.Errorf("%s node data is %v, want %v", p.op, t, p.value)
			}
		case t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct:
			return nil, errors.Errorf("%s node data is %v, not a pointer to a struct", p.op, t)
		default:
			if err := sameFields(p.mirror, t.Elem()); err != nil {
				return nil, err
			}
		}
		if !p.check(data) {
			return nil, errors.Errorf("%s node data reads wrong through its mirror", p.op)
		}
		types[p.op] = t
	}
	return types, nil
}

// install puts the engine's executors into simplego's table, once. It
// returns why it could not (the table is then as simplego left it).
func install() error {
	engine.once.Do(func() {
		types, err := verifyMirrors()
		if err != nil {
			engine.err = &EngineError{Cause: err.Error()}
			return
		}
		engine.dataTypes = types
		if installCheck != nil {
			if err := installCheck(); err != nil {
				engine.err = &EngineError{Cause: err.Error()}
				return
			}
		}
		for op := range engineExecutors {
			if simplegoExecutors[op] == nil {
				engine.err = &EngineError{Cause: fmt.Sprintf("simplego has no executor for %s", op)}
				return
			}
		}
		for op, ex := range engineExecutors {
			engine.orig[op] = simplegoExecutors[op]
			simplegoExecutors[op] = ex
		}
		if err := selfTest(); err != nil {
			for op := range engineExecutors {
				simplegoExecutors[op] = engine.orig[op]
			}
			engine.err = &EngineError{Cause: err.Error()}
		}
	})
	return engine.err
}

// installCheck, when set (by tests, in a child process), is one more check
// install makes after verifying the mirrors; its error stops the install
// as a failed verification does.
var installCheck func() error

// engineExecutors are the executors the engine installs, by op type.
var engineExecutors = map[backends.OpType]executor{
	backends.OpTypeDotGeneral:  execDotGeneral,
	backends.OpTypeTanh:        unaryExecutor(backends.OpTypeTanh, kernels.Tanh),
	backends.OpTypeExp:         unaryExecutor(backends.OpTypeExp, kernels.Exp),
	backends.OpTypeLogistic:    unaryExecutor(backends.OpTypeLogistic, kernels.Logistic),
	backends.OpTypeLog1p:       unaryExecutor(backends.OpTypeLog1p, kernels.Log1p),
	backends.OpTypeAdd:         binaryExecutor(backends.OpTypeAdd, kernels.Add),
	backends.OpTypeSub:         binaryExecutor(backends.OpTypeSub, kernels.Sub),
	backends.OpTypeMul:         binaryExecutor(backends.OpTypeMul, kernels.Mul),
	backends.OpTypeSlice:       execSlice,
	backends.OpTypeConcatenate: execConcatenate,
	backends.OpTypeGather:      execGather,
	backends.OpTypeScatterSum:  execScatterSum,
}

// enable turns the engine on for b: it installs the executors if needed,
// applies the level SNOPT_KERNELS asks for, and returns a one-line notice
// when the engine cannot run.
func enable(b backends.Backend) (notice string, err error) {
	sb, ok := b.(*simplego.Backend)
	if !ok {
		return "", nil
	}
	setting := strings.ToLower(strings.TrimSpace(os.Getenv(KernelsEnvVar)))
	switch setting {
	case "off":
		return "", nil
	case "", "on":
		kernels.SetLevel(kernels.Best())
	default:
		l, err := kernels.ParseLevel(setting)
		if err != nil {
			return "", errors.Errorf("backend: %s=%q: want on, off, go, avx2 or avx512", KernelsEnvVar, setting)
		}
		kernels.SetLevel(l)
	}
	if err := install(); err != nil {
		engine.noticeOnce.Do(func() { notice = fmt.Sprintf("backend: %v; plain simplego runs", err) })
		return notice, nil
	}
	setEnabled(sb, true)
	return "", nil
}

// EngineOn reports whether the engine's kernels run for b.
func EngineOn(b backends.Backend) bool {
	sb, ok := b.(*simplego.Backend)
	if !ok {
		return false
	}
	return on(sb)
}

// Describe returns a short description of how b computes, for logs and
// reports: for example "SimpleGo (go), engine avx512" or "SimpleGo (go),
// engine off".
func Describe(b backends.Backend) string {
	if _, ok := b.(*simplego.Backend); !ok {
		return b.Name()
	}
	if EngineOn(b) {
		return fmt.Sprintf("%s, engine %s", b.Name(), kernels.Current())
	}
	return b.Name() + ", engine off"
}

// on reports whether the engine runs for sb.
func on(sb *simplego.Backend) bool {
	if l := engine.enabled.Load(); l != nil {
		for _, b := range *l {
			if b == sb {
				return true
			}
		}
	}
	return false
}

// setEnabled adds sb to the enabled backends, or removes it. A finalized
// backend stays listed (a few bytes; backends are created a handful of
// times per process).
func setEnabled(sb *simplego.Backend, enable bool) {
	engine.enabledMu.Lock()
	defer engine.enabledMu.Unlock()
	var next []*simplego.Backend
	if l := engine.enabled.Load(); l != nil {
		for _, b := range *l {
			if b != sb {
				next = append(next, b)
			}
		}
	}
	if enable {
		next = append(next, sb)
	}
	engine.enabled.Store(&next)
}

// float32Flat returns buf's data as []float32, or nil.
func float32Flat(b *simplego.Backend, buf *simplego.Buffer) []float32 {
	flat, err := b.BufferData(buf)
	if err != nil {
		return nil
	}
	f, _ := flat.([]float32)
	return f
}

// shapeOf returns buf's shape.
func shapeOf(b *simplego.Backend, buf *simplego.Buffer) shapes.Shape {
	s, _ := b.BufferShape(buf)
	return s
}

// operandLayout returns how a DotGeneral operand of the given shape is read
// as a matrix with the free (cross) axes as rows and the contracting axes as
// columns: rs and cs are the strides of a row and a column, and ok is false
// when the batch axes are not the leading ones in order or the contracting
// axes are not one run of consecutive axes at the start or the end of the
// rest. cross and contract are the products of the free and contracting
// dimensions.
func operandLayout(dims []int, contracting, batch []int, cross, contract int) (rs, cs int, ok bool) {
	for i, a := range batch {
		if a != i {
			return 0, 0, false
		}
	}
	nb, nc, rank := len(batch), len(contracting), len(dims)
	for i := 1; i < nc; i++ {
		if contracting[i] != contracting[i-1]+1 {
			return 0, 0, false
		}
	}
	switch {
	case nc == 0 || contracting[nc-1] == rank-1:
		// [batch…, cross…, contract…]
		if nc > 0 && contracting[0] < nb {
			return 0, 0, false
		}
		return contract, 1, true
	case contracting[0] == nb:
		// [batch…, contract…, cross…]
		return 1, cross, true
	}
	return 0, 0, false
}

// execDotGeneral runs a float32 DotGeneral with kernels.GemmBatch.
func execDotGeneral(b *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	const op = backends.OpTypeDotGeneral
	nm := mirrorOf(node)
	dg := dataOf[dotGeneralMirror](node, backends.OpTypeDotGeneral)
	if !on(b) || nm.shape.DType != dtypes.Float32 || dg == nil {
		return fallback(op, b, node, inputs, owned)
	}
	lhsShape, rhsShape := shapeOf(b, inputs[0]), shapeOf(b, inputs[1])
	lhs, rhs := float32Flat(b, inputs[0]), float32Flat(b, inputs[1])
	batch, m, n, k := dg.batchSize, dg.lhsCrossSize, dg.rhsCrossSize, dg.contractingSize
	ars, acs, okA := operandLayout(lhsShape.Dimensions, dg.lhsContractingAxes, dg.lhsBatchAxes, m, k)
	// For rhs the "cross" rows are B's columns: read it as Bᵀ, then swap.
	bcs, brs, okB := operandLayout(rhsShape.Dimensions, dg.rhsContractingAxes, dg.rhsBatchAxes, n, k)
	if lhs == nil || rhs == nil || !okA || !okB || len(lhs) != batch*m*k || len(rhs) != batch*k*n {
		return fallback(op, b, node, inputs, owned)
	}
	out := b.NewBuffer(nm.shape)
	if out == nil {
		return nil, errors.New("DotGeneral: backend finalized")
	}
	engine.ran[op].Add(1)
	c := float32Flat(b, out)
	if err := catch(func() {
		kernels.GemmBatch(batch, m, n, k,
			kernels.Mat{Data: lhs, RowStride: ars, ColStride: acs}, m*k,
			kernels.Mat{Data: rhs, RowStride: brs, ColStride: bcs}, k*n, c)
	}); err != nil {
		return nil, errors.WithMessagef(err, "DotGeneral %s·%s", lhsShape, rhsShape)
	}
	return out, nil
}

// catch runs f and turns a panic into an error.
func catch(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.Errorf("kernel panic: %v", r)
		}
	}()
	f()
	return nil
}

// minElementwise is the fewest elements an element-wise op needs to run on
// the engine: below it (the scalars of step-size control, small reductions)
// simplego's own loop is as fast and skips the engine's buffer calls
// (BenchmarkHookOverhead).
const minElementwise = 64

// unaryExecutor runs a float32 element-wise function with f, in place when
// simplego owns the input (as its own executors do).
func unaryExecutor(op backends.OpType, f func(dst, src []float32)) executor {
	return func(b *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
		if !on(b) {
			return engine.orig[op](b, node, inputs, owned)
		}
		src := float32Flat(b, inputs[0])
		if src == nil || len(src) < minElementwise {
			return fallback(op, b, node, inputs, owned)
		}
		engine.ran[op].Add(1)
		out := inputs[0]
		if owned[0] {
			inputs[0] = nil // tells simplego the buffer was taken over
		} else if out = b.NewBuffer(shapeOf(b, inputs[0])); out == nil {
			return nil, errors.Errorf("%s: backend finalized", op)
		}
		f(float32Flat(b, out), src)
		return out, nil
	}
}

// binaryExecutor runs a float32 element-wise operation on two operands of
// one shape with f (other shapes go to simplego, which broadcasts scalars),
// reusing an owned operand's buffer as simplego does: the right one first.
func binaryExecutor(op backends.OpType, f func(dst, a, b []float32)) executor {
	return func(b *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
		if !on(b) {
			return engine.orig[op](b, node, inputs, owned)
		}
		lhs, rhs := float32Flat(b, inputs[0]), float32Flat(b, inputs[1])
		if lhs == nil || rhs == nil || len(lhs) < minElementwise || len(lhs) != len(rhs) || !shapeOf(b, inputs[0]).Equal(shapeOf(b, inputs[1])) {
			return fallback(op, b, node, inputs, owned)
		}
		engine.ran[op].Add(1)
		var out *simplego.Buffer
		switch {
		case owned[1]:
			out, inputs[1] = inputs[1], nil
		case owned[0]:
			out, inputs[0] = inputs[0], nil
		default:
			if out = b.NewBuffer(shapeOf(b, inputs[0])); out == nil {
				return nil, errors.Errorf("%s: backend finalized", op)
			}
		}
		f(float32Flat(b, out), lhs, rhs)
		return out, nil
	}
}

// selfTest runs a small graph of every swapped op on a probe backend with
// the engine on and compares it with the same graph on plain executors.
func selfTest() error {
	run := func(withEngine bool) ([]float32, error) {
		b, err := simplego.New("ops_sequential")
		if err != nil {
			return nil, err
		}
		defer b.Finalize()
		if withEngine {
			sb := b.(*simplego.Backend)
			setEnabled(sb, true)
			defer setEnabled(sb, false)
		}
		bld := b.Builder("engine-self-test")
		x, err := bld.Parameter("x", shapes.Make(dtypes.Float32, 13, 7), nil)
		if err != nil {
			return nil, err
		}
		y, err := bld.Parameter("y", shapes.Make(dtypes.Float32, 19, 7), nil)
		if err != nil {
			return nil, err
		}
		var ops []backends.Op
		step := func(op backends.Op, err error) backends.Op {
			if err == nil {
				ops = append(ops, op)
			}
			return op
		}
		p := step(bld.DotGeneral(x, []int{1}, nil, y, []int{1}, nil)) // [13, 19]
		t := step(bld.Tanh(p))
		e := step(bld.Exp(t))
		l := step(bld.Logistic(p))
		s := step(bld.Sub(e, l))
		m := step(bld.Mul(s, t))
		out := step(bld.Add(m, p))
		if len(ops) != 7 {
			return nil, errors.New("building the self-test graph failed")
		}
		exe, err := bld.Compile([]backends.Op{out}, nil)
		if err != nil {
			return nil, err
		}
		defer exe.Finalize()
		var in []backends.Buffer
		for i, n := range []int{13 * 7, 19 * 7} {
			v := make([]float32, n)
			for j := range v {
				v[j] = float32(((j*37+i*11)%23)-11) / 7
			}
			dims := []int{13, 7}
			if i == 1 {
				dims = []int{19, 7}
			}
			buf, err := b.BufferFromFlatData(0, v, shapes.Make(dtypes.Float32, dims...))
			if err != nil {
				return nil, err
			}
			in = append(in, buf)
		}
		res, err := exe.Execute(in, nil, 0)
		if err != nil {
			return nil, err
		}
		got := make([]float32, 13*19)
		if err := b.BufferToFlatData(res[0], got); err != nil {
			return nil, err
		}
		return got, nil
	}
	want, err := run(false)
	if err != nil {
		return errors.WithMessage(err, "self-test on plain simplego")
	}
	got, err := run(true)
	if err != nil {
		return errors.WithMessage(err, "self-test with the engine")
	}
	for i := range want {
		if d := float64(got[i] - want[i]); !(d <= 1e-4 && d >= -1e-4) {
			return errors.Errorf("self-test: element %d is %g with the engine, %g without", i, got[i], want[i])
		}
	}
	return nil
}
