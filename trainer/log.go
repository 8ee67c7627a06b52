package trainer

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"strconv"
)

// csvHeader is the per-iteration log's columns.
var csvHeader = []string{"iter", "seconds", "step_seconds", "loss", "metric", "nfe_forward", "nfe_backward",
	"stats", "eval_loss", "eval_metric", "t1", "dldt1"}

type logFile struct {
	f *os.File
	w *csv.Writer
}

// openLog opens the CSV log: truncated for a fresh run, or — resuming from
// a checkpoint at iteration keep — rewritten (atomically) to its rows up to
// keep, dropping any torn last line and the rows a killed run wrote after
// its last checkpoint, then appended to. It returns the rows kept. An empty
// path logs nothing.
func openLog(path string, resume bool, keep int) (*logFile, []Record, error) {
	if path == "" {
		return &logFile{}, nil, nil
	}
	var kept []Record
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if resume {
		recs, err := ReadCSV(path)
		if err != nil && !os.IsNotExist(err) {
			return nil, nil, err
		}
		for _, r := range recs {
			if r.Iter <= keep {
				kept = append(kept, r)
			}
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		_ = w.Write(csvHeader)
		for _, r := range kept {
			_ = w.Write(row(r))
		}
		w.Flush()
		if err := writeAtomic(path, buf.Bytes()); err != nil {
			return nil, nil, fmt.Errorf("trainer: log: %w", err)
		}
		flags = os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("trainer: log: %w", err)
	}
	l := &logFile{f: f, w: csv.NewWriter(f)}
	if !resume {
		if err := l.w.Write(csvHeader); err != nil {
			return nil, nil, err
		}
	}
	return l, kept, nil
}

func num(x float64) string {
	if math.IsNaN(x) {
		return ""
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

// row formats a record as the log's columns.
func row(r Record) []string {
	return []string{strconv.Itoa(r.Iter), num(r.Seconds), num(r.StepSeconds), num(r.Loss), num(r.Metric),
		strconv.Itoa(r.NFEForward), strconv.Itoa(r.NFEBwd), strconv.FormatBool(r.Stats), num(r.EvalLoss),
		num(r.EvalMet), num(r.T1), num(r.DLdT1)}
}

func (l *logFile) write(r Record) error {
	if l.w == nil {
		return nil
	}
	if err := l.w.Write(row(r)); err != nil {
		return err
	}
	l.w.Flush()
	return l.w.Error()
}

func (l *logFile) close() {
	if l.f != nil {
		l.w.Flush()
		_ = l.f.Close()
	}
}

// ReadCSV reads a log written by Run. A torn last line (a run killed while
// writing it: no final newline) is dropped; any other malformed row is an
// error naming its line.
func ReadCSV(path string) ([]Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	recs, err := parseLog(data)
	if err != nil {
		return nil, fmt.Errorf("trainer: %s: %w", path, err)
	}
	return recs, nil
}

// parseLog parses a log's bytes (see ReadCSV).
func parseLog(data []byte) ([]Record, error) {
	if i := bytes.LastIndexByte(data, '\n'); i < len(data)-1 {
		data = data[:i+1] // torn last line
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1 // checked per row, with the line in the message
	rows, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	var out []Record
	for i, row := range rows {
		if i == 0 {
			continue // header
		}
		rec, err := parseRow(row)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// parseRow reads one row; the dldt1 column is optional (older logs).
func parseRow(r []string) (Record, error) {
	if len(r) < len(csvHeader)-1 || len(r) > len(csvHeader) {
		return Record{}, fmt.Errorf("%d columns, want %d", len(r), len(csvHeader))
	}
	var err error
	float := func(s string) float64 {
		if s == "" || err != nil {
			return math.NaN()
		}
		v, e := strconv.ParseFloat(s, 64)
		if e != nil {
			err = e
		}
		return v
	}
	integer := func(s string) int {
		v, e := strconv.Atoi(s)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	rec := Record{Iter: integer(r[0]), Seconds: float(r[1]), StepSeconds: float(r[2]), Loss: float(r[3]),
		Metric: float(r[4]), NFEForward: integer(r[5]), NFEBwd: integer(r[6]), Stats: r[7] == "true",
		EvalLoss: float(r[8]), EvalMet: float(r[9]), T1: float(r[10]), DLdT1: math.NaN()}
	if len(r) == len(csvHeader) {
		rec.DLdT1 = float(r[11])
	}
	return rec, err
}
