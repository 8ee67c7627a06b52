package datasets

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// CIFAR-10's binary version: one label byte (0–9), then the 32×32 image as
// 1024 red, 1024 green and 1024 blue bytes, each plane row-major.
const (
	cifarSide    = 32
	cifarPixels  = cifarSide * cifarSide
	cifarRecord  = 1 + 3*cifarPixels
	cifarClasses = 10
	// cifarMaxRecords bounds one file (a batch file has 10,000).
	cifarMaxRecords = 1 << 20
)

// ReadCIFAR10File reads one file of CIFAR-10's binary version (see
// ReadCIFAR10); errors name the file.
// The pixels' buffer is sized from the file's length (within the cap), so
// reading costs the pixels once.
func ReadCIFAR10File(path string) (*Images, error) {
	records := 0
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		records = int(min(st.Size()/cifarRecord, cifarMaxRecords))
	}
	return readFile(path, func(r io.Reader, name string) (*Images, error) { return readCIFAR10(r, name, records) })
}

// ReadCIFAR10 parses a file of CIFAR-10's "binary version"
// (data_batch_1.bin … data_batch_5.bin, test_batch.bin): records of one label
// byte 0–9 and 3072 pixel bytes (red, green, blue planes of 32×32, rows
// first). Pixels become channels-last [32, 32, 3] values in [0, 1]. An empty
// file, a truncated record or a label above 9 is ErrFormat naming the file
// and the record.
func ReadCIFAR10(r io.Reader, name string) (*Images, error) { return readCIFAR10(r, name, 0) }

// readCIFAR10 is ReadCIFAR10 with room for the given number of records
// reserved up front (0: grow as they come).
func readCIFAR10(r io.Reader, name string, records int) (*Images, error) {
	im := &Images{H: cifarSide, W: cifarSide, C: 3, Classes: cifarClasses}
	if records > 0 && CheckDeclared(name, uint64(records)*3*cifarPixels) == nil {
		im.Bytes = make([]uint8, 0, records*3*cifarPixels)
		im.Labels = make([]int, 0, records)
	}
	rec := make([]byte, cifarRecord)
	for {
		n, err := io.ReadFull(r, rec)
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: %s: record %d is truncated (%d of %d bytes)", ErrFormat, name, im.N, n, cifarRecord)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrFormat, name, err)
		}
		if rec[0] >= cifarClasses {
			return nil, fmt.Errorf("%w: %s: record %d has label %d (want 0–9)", ErrFormat, name, im.N, rec[0])
		}
		if im.N == cifarMaxRecords {
			return nil, fmt.Errorf("%w: %s: more than %d records", ErrFormat, name, cifarMaxRecords)
		}
		if err := CheckDeclared(fmt.Sprintf("%s: record %d", name, im.N), uint64(im.N+1)*3*cifarPixels); err != nil {
			return nil, err
		}
		im.Labels = append(im.Labels, int(rec[0]))
		planes := rec[1:]
		for p := range cifarPixels {
			for c := range 3 {
				im.Bytes = append(im.Bytes, planes[c*cifarPixels+p])
			}
		}
		im.N++
	}
	if im.N == 0 {
		return nil, fmt.Errorf("%w: %s: no records", ErrFormat, name)
	}
	return im, nil
}

// CIFAR10Files are the binary version's file names: five training batches
// and the test batch.
var CIFAR10Files = struct {
	Train []string
	Test  string
}{Train: []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
	Test: "test_batch.bin"}

// LoadCIFAR10 reads the binary version from dir (the folder the archive
// unpacks to, cifar-10-batches-bin): the five training batches in order and
// the test batch. A missing file is ErrFormat naming every file expected.
// Pixels are in [0, 1]; standardise with StandardizeChannels.
func LoadCIFAR10(dir string) (train, test *Images, err error) {
	for _, f := range append(append([]string{}, CIFAR10Files.Train...), CIFAR10Files.Test) {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return nil, nil, fmt.Errorf("%w: %s has no %s: CIFAR-10's binary version needs %v and %s there",
				ErrFormat, dir, f, CIFAR10Files.Train, CIFAR10Files.Test)
		}
	}
	for _, f := range CIFAR10Files.Train {
		part, err := ReadCIFAR10File(filepath.Join(dir, f))
		if err != nil {
			return nil, nil, err
		}
		if train == nil {
			train = part
			continue
		}
		train.N += part.N
		train.Bytes = append(train.Bytes, part.Bytes...)
		train.Labels = append(train.Labels, part.Labels...)
	}
	if test, err = ReadCIFAR10File(filepath.Join(dir, CIFAR10Files.Test)); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// StandardizeChannels sets the byte-to-value map of im and of others (test
// sets) so that every channel of im (the training set) has mean 0 and
// variance 1 (population statistics, of the bytes/255, counted exactly by a
// histogram); it returns the per-channel means and standard deviations of
// the bytes/255. Whatever map was set before is replaced. Images of another
// geometry, or a constant channel, are ErrFormat.
func (im *Images) StandardizeChannels(others ...*Images) (mean, std []float64, err error) {
	if im == nil || im.N < 1 || im.C < 1 {
		return nil, nil, fmt.Errorf("%w: no images to standardise", ErrFormat)
	}
	for _, o := range others {
		if o.H != im.H || o.W != im.W || o.C != im.C {
			return nil, nil, fmt.Errorf("%w: images of %d×%d×%d and %d×%d×%d", ErrFormat, o.H, o.W, o.C, im.H, im.W, im.C)
		}
	}
	hist := make([][256]int64, im.C)
	for j, b := range im.Bytes {
		hist[j%im.C][b]++
	}
	mean, std = make([]float64, im.C), make([]float64, im.C)
	for c := range hist {
		var n, sum float64
		for b, k := range hist[c] {
			n += float64(k)
			sum += float64(k) * float64(b) / 255
		}
		mean[c] = sum / n
		for b, k := range hist[c] {
			d := float64(b)/255 - mean[c]
			std[c] += float64(k) * d * d
		}
		std[c] = math.Sqrt(std[c] / n)
		if !(std[c] > 0) {
			return nil, nil, fmt.Errorf("%w: channel %d is constant", ErrFormat, c)
		}
	}
	for _, set := range append([]*Images{im}, others...) {
		set.Mean, set.Std = slices.Clone(mean), slices.Clone(std)
	}
	return mean, std, nil
}
