package trainer

import (
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

// openLog opens the CSV log (appending when resuming); an empty path logs nothing.
func openLog(path string, appendTo bool) (*logFile, error) {
	if path == "" {
		return &logFile{}, nil
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if appendTo {
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("trainer: log: %w", err)
	}
	l := &logFile{f: f, w: csv.NewWriter(f)}
	if st, _ := f.Stat(); st != nil && st.Size() == 0 {
		if err := l.w.Write(csvHeader); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func num(x float64) string {
	if math.IsNaN(x) {
		return ""
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

func (l *logFile) write(r Record) error {
	if l.w == nil {
		return nil
	}
	row := []string{strconv.Itoa(r.Iter), num(r.Seconds), num(r.StepSeconds), num(r.Loss), num(r.Metric),
		strconv.Itoa(r.NFEForward), strconv.Itoa(r.NFEBwd), strconv.FormatBool(r.Stats), num(r.EvalLoss),
		num(r.EvalMet), num(r.T1), num(r.DLdT1)}
	if err := l.w.Write(row); err != nil {
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

// ReadCSV reads a log written by Run.
func ReadCSV(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("trainer: %s: %w", path, err)
	}
	var out []Record
	parse := func(s string) float64 {
		if s == "" {
			return math.NaN()
		}
		v, _ := strconv.ParseFloat(s, 64)
		return v
	}
	for i, row := range rows {
		if i == 0 || len(row) < len(csvHeader)-1 {
			continue
		}
		dldt1 := math.NaN()
		if len(row) >= len(csvHeader) {
			dldt1 = parse(row[11])
		}
		it, _ := strconv.Atoi(row[0])
		nf, _ := strconv.Atoi(row[5])
		nb, _ := strconv.Atoi(row[6])
		out = append(out, Record{Iter: it, Seconds: parse(row[1]), StepSeconds: parse(row[2]), Loss: parse(row[3]),
			Metric: parse(row[4]), NFEForward: nf, NFEBwd: nb, Stats: row[7] == "true", EvalLoss: parse(row[8]),
			EvalMet: parse(row[9]), T1: parse(row[10]), DLdT1: dldt1})
	}
	return out, nil
}
