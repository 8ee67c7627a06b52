package main

import (
	"os"
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill the child when this process dies, and
// puts the child in its own process group: a terminal's Ctrl-C reaches the
// orchestrator only, which forwards one signal (a second one, straight from
// the terminal, would make the worker exit before its checkpoint).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// lockFile takes an exclusive, non-blocking lock on f (released when the
// process ends, even by kill -9).
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// processAlive reports whether a process with this id exists.
func processAlive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) != syscall.ESRCH
}
