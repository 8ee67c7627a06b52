package backend

import (
	"fmt"
	"os"
	"reflect"
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
// The wrappers read unexported things: a node's output shape and its
// op-specific data (DotGeneral's axes, Slice's starts and strides, Gather's
// and Scatter's axis maps, Concatenate's axis). They read them through
// mirror types whose fields are checked against the real ones with reflect
// (names, offsets, types, sizes) before anything is installed, and a
// self-test then runs a graph of swapped ops through the installed table and
// compares it with the executors simplego had (engine_verify.go). On any
// mismatch nothing stays installed, plain simplego runs, and one line on
// standard error says so.

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

// fallback hands a node the engine does not handle to simplego's executor,
// counting it.
func fallback(op backends.OpType, b *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	engine.fellBack[op].Add(1)
	return engine.orig[op](b, node, inputs, owned)
}

// whenOn wraps the engine's executor for op: a backend the engine is not
// enabled for goes straight to simplego's executor, so the engine's
// executors only run for enabled backends.
func whenOn(op backends.OpType, ex executor) executor {
	return func(b *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
		if !on(b) {
			return engine.orig[op](b, node, inputs, owned)
		}
		return ex(b, node, inputs, owned)
	}
}

// EngineError reports why the engine could not be installed; simplego's
// own executors then run.
type EngineError struct {
	// Cause says what did not match or failed (a field of simplego's nodes,
	// a probe, the self-test).
	Cause string
}

func (e *EngineError) Error() string { return "kernel engine not installed: " + e.Cause }

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
			simplegoExecutors[op] = whenOn(op, ex)
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

// engineExecutors are the executors the engine installs, by op type; each
// runs only for an enabled backend (install wraps it in whenOn).
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
			return "", errors.Wrapf(ErrConfig, "%s=%q: want on, off, go, avx2 or avx512", KernelsEnvVar, setting)
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
	if nm.shape.DType != dtypes.Float32 || dg == nil {
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
		src := float32Flat(b, inputs[0])
		if len(src) < minElementwise { // also nil: not float32
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
