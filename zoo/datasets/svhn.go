package datasets

import (
	"fmt"
	"io"
	"path/filepath"
)

// SVHNFiles are the cropped-digits files (format 2) of SVHN.
var SVHNFiles = struct{ Train, Test string }{Train: "train_32x32.mat", Test: "test_32x32.mat"}

// ReadSVHNFile reads one SVHN cropped-digits file (see ReadSVHN); errors
// name the file.
func ReadSVHNFile(path string) (*Images, error) { return readFile(path, ReadSVHN) }

// ReadSVHN parses an SVHN cropped-digits MAT-file (train_32x32.mat,
// test_32x32.mat): X of dimensions [H, W, 3, N] (MATLAB column-major, values
// 0–255) and y of N labels 1–10, where 10 is the digit 0. Pixels become
// channels-last [H, W, 3] values in [0, 1], labels the digits 0–9. Missing
// variables, other shapes, fractional or out-of-range values are ErrFormat
// naming the file.
func ReadSVHN(r io.Reader, name string) (*Images, error) {
	vars, err := ReadMAT(r, name)
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrFormat, name, fmt.Sprintf(format, args...))
	}
	x, y := vars["X"], vars["y"]
	if x == nil || y == nil {
		return nil, bad("an SVHN file holds the numeric arrays X and y")
	}
	if len(x.Dims) != 4 || x.Dims[2] != 3 || x.Dims[0] < 1 || x.Dims[1] < 1 || x.Dims[3] < 1 {
		return nil, bad("X has dimensions %v, want [H, W, 3, N]", x.Dims)
	}
	h, w, n := x.Dims[0], x.Dims[1], x.Dims[3]
	if y.Len() != n || len(y.Dims) != 2 || (y.Dims[0] != 1 && y.Dims[1] != 1) {
		return nil, bad("y has dimensions %v for %d images, want [%d, 1]", y.Dims, n, n)
	}
	im := &Images{N: n, H: h, W: w, C: 3, Classes: 10, Labels: make([]int, n)}
	for i := range n {
		v := y.At(i)
		if v != float64(int(v)) || v < 1 || v > 10 {
			return nil, bad("label %d is %v, want 1–10", i, v)
		}
		im.Labels[i] = int(v) % 10
	}
	// Column-major X: value (row, col, ch, i) at row + h·(col + w·(ch + 3·i)),
	// so each image is one contiguous block, reordered channels-last in
	// place when X is stored as bytes (no second copy of the pixels).
	size := h * w * 3
	block := make([]byte, size)
	if x.U8 != nil {
		im.Bytes = x.U8
	} else {
		im.Bytes = make([]byte, x.Len())
	}
	for i := range n {
		for j := range size {
			v := x.At(i*size + j)
			if v < 0 || v > 255 || v != float64(int(v)) {
				row, col, ch := j%h, (j/h)%w, j/(h*w)
				return nil, bad("pixel (%d, %d, %d) of image %d is %v, want 0–255", row, col, ch, i, v)
			}
			block[j] = byte(v)
		}
		dst := im.Bytes[i*size : (i+1)*size]
		for ch := range 3 {
			for col := range w {
				for row := range h {
					dst[(row*w+col)*3+ch] = block[row+h*(col+w*ch)]
				}
			}
		}
	}
	return im, nil
}

// LoadSVHN reads train_32x32.mat and test_32x32.mat from dir (the test
// split is the test file). Pixels are in [0, 1]; standardise with
// StandardizeChannels.
func LoadSVHN(dir string) (train, test *Images, err error) {
	if train, err = ReadSVHNFile(filepath.Join(dir, SVHNFiles.Train)); err != nil {
		return nil, nil, err
	}
	if test, err = ReadSVHNFile(filepath.Join(dir, SVHNFiles.Test)); err != nil {
		return nil, nil, err
	}
	if test.H != train.H || test.W != train.W {
		return nil, nil, fmt.Errorf("%w: %s: test images are %d×%d, training images %d×%d", ErrFormat, dir, test.H, test.W, train.H, train.W)
	}
	return train, test, nil
}
