//go:build !linux

package main

import (
	"os"
	"os/exec"
)

// dieWithParent: without a parent-death signal the worker's own watch of
// its parent (watchParent) ends it.
func dieWithParent(*exec.Cmd) {}

// lockFile: no advisory lock on this system; benches on one -out are not
// prevented from racing.
func lockFile(*os.File) error { return nil }

// processAlive: without a portable probe, a process counts as gone (its
// temporary files are removed, as before workers ran side by side).
func processAlive(int) bool { return false }
