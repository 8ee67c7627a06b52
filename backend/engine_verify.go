package backend

import (
	"reflect"
	"slices"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/pkg/errors"
)

// Checks made before and after the engine is installed: the mirror types
// against simplego's, and a self-test of the installed executors.

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
