package datasets

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// MaxBytesEnv is the environment variable that overrides MaxBytes (a byte
// count, with an optional K, M or G suffix for KiB, MiB, GiB).
const MaxBytesEnv = "SNOPT_MAX_DATA_BYTES"

// DefaultMaxBytes is MaxBytes unless MaxBytesEnv says otherwise: 2 GiB.
const DefaultMaxBytes = 2 << 30

// MaxBytes caps what one data file may make the readers hold: the decoded
// values a header declares (pixels as bytes, matrix and series values as
// float64) and what a compressed element may inflate to. A file that
// declares more is ErrFormat naming the size and this cap before anything of
// that size is allocated; raise it (or set MaxBytesEnv) for larger sets.
// The readers also grow their buffers only as data arrives, so a header
// that claims more than the file holds costs no large allocation.
var MaxBytes int64 = maxBytesFromEnv()

func maxBytesFromEnv() int64 {
	v := strings.TrimSpace(os.Getenv(MaxBytesEnv))
	if v == "" {
		return DefaultMaxBytes
	}
	n, err := ParseBytes(v)
	if err != nil || n < 1 {
		fmt.Fprintf(os.Stderr, "datasets: ignoring %s=%q (want a byte count such as 4G); the cap stays %d bytes\n", MaxBytesEnv, v, int64(DefaultMaxBytes))
		return DefaultMaxBytes
	}
	return n
}

// ParseBytes reads a byte count: digits with an optional K, M or G suffix
// (powers of 1024; "KiB", "MB" and the like are read the same way).
func ParseBytes(s string) (int64, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	s = strings.TrimSuffix(strings.TrimSuffix(s, "B"), "I")
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%w: %q is not a byte count", ErrInvalid, s)
	}
	return n * mult, nil
}

// CheckDeclared refuses a declared size above MaxBytes with ErrFormat that
// names what declared it.
func CheckDeclared(what string, bytes uint64) error {
	if bytes > uint64(MaxBytes) {
		return fmt.Errorf("%w: %s declares %d bytes, over the %d-byte cap (datasets.MaxBytes; set %s to raise it)",
			ErrFormat, what, bytes, MaxBytes, MaxBytesEnv)
	}
	return nil
}

// ReadDeclared reads exactly n bytes that a header declared, after
// checking n against MaxBytes. The buffer grows as data arrives (chunks of
// at most 16 MiB, joined once complete), so a header claiming more than the
// stream holds costs what the stream holds, and a complete read peaks at
// twice n. A short stream is io.ErrUnexpectedEOF (wrapped).
func ReadDeclared(r io.Reader, n uint64, what string) ([]byte, error) {
	return readDeclared(r, n, what, nil)
}

// readDeclared is ReadDeclared returning prefix followed by the n bytes.
func readDeclared(r io.Reader, n uint64, what string, prefix []byte) ([]byte, error) {
	if err := CheckDeclared(what, n); err != nil {
		return nil, err
	}
	const chunk = 16 << 20
	if n <= chunk {
		buf := make([]byte, uint64(len(prefix))+n)
		copy(buf, prefix)
		if k, err := io.ReadFull(r, buf[len(prefix):]); err != nil {
			return nil, fmt.Errorf("%s: %d of %d bytes: %w", what, k, n, io.ErrUnexpectedEOF)
		}
		return buf, nil
	}
	var parts [][]byte
	var got uint64
	for got < n {
		part := make([]byte, min(chunk, n-got))
		k, err := io.ReadFull(r, part)
		got += uint64(k)
		parts = append(parts, part[:k])
		if err != nil {
			return nil, fmt.Errorf("%s: %d of %d bytes: %w", what, got, n, io.ErrUnexpectedEOF)
		}
	}
	out := make([]byte, 0, uint64(len(prefix))+n)
	out = append(out, prefix...)
	for i, p := range parts {
		out = append(out, p...)
		parts[i] = nil
	}
	return out, nil
}
