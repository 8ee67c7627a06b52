package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// exitSignalled is the exit status of a bench that a signal stopped
// (128 + SIGINT's number, as shells report it).
const exitSignalled = 130

// errInterrupted ends an orchestrator's loop once a signal arrived: runs
// not yet started are not started.
var errInterrupted = errors.New("interrupted by a signal")

// interrupted is set when the first SIGINT or SIGTERM arrives.
var interrupted atomic.Bool

// children are the worker processes the orchestrator is waiting for, which
// a first signal is forwarded to and a second one kills (-reproduce runs
// several side by side).
var children struct {
	sync.Mutex
	p map[*os.Process]bool
}

// setChild records a started worker.
func setChild(p *os.Process) {
	children.Lock()
	if children.p == nil {
		children.p = map[*os.Process]bool{}
	}
	children.p[p] = true
	children.Unlock()
}

// unsetChild forgets a worker that ended.
func unsetChild(p *os.Process) {
	children.Lock()
	delete(children.p, p)
	children.Unlock()
}

// signalChild sends sig to every running worker.
func signalChild(sig os.Signal) {
	children.Lock()
	defer children.Unlock()
	for p := range children.p {
		_ = p.Signal(sig)
	}
}

// stopOnSignal handles SIGINT and SIGTERM for the rest of the process: the
// first closes the returned channel (the trainer then finishes the
// iteration under way, writes a checkpoint and returns) and is forwarded
// to a running worker; a second kills the worker and exits at once.
func stopOnSignal(who string) <-chan struct{} {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	stop := make(chan struct{})
	go func() {
		sig := <-ch
		interrupted.Store(true)
		fmt.Fprintf(os.Stderr, "\nbench: %s: %v: finishing the iteration under way, then writing a checkpoint and the partial results (a second signal exits at once)\n", who, sig)
		signalChild(os.Interrupt)
		close(stop)
		sig = <-ch
		fmt.Fprintf(os.Stderr, "bench: %s: second %v: exiting now (the last checkpoint is kept)\n", who, sig)
		signalChild(os.Kill)
		os.Exit(exitSignalled)
	}()
	return stop
}

// resumeCommand is this invocation's command line with -resume added: what
// continues an interrupted bench.
func resumeCommand(args []string) string {
	var parts []string
	resume := false
	for _, a := range args {
		if a == "-resume" || a == "--resume" || strings.HasPrefix(a, "-resume=") || strings.HasPrefix(a, "--resume=") {
			a, resume = "-resume", true
		}
		parts = append(parts, shellQuote(a))
	}
	if !resume {
		parts = append(parts, "-resume")
	}
	return strings.Join(parts, " ")
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
