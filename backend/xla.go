//go:build xla

package backend

import (
	"github.com/gomlx/gomlx/backends/xla"
)

// With the xla build tag the XLA/PJRT backend is linked in, but it never
// downloads a plugin: the user points GOMLX_BACKEND at an existing one.
func init() {
	xla.EnableAutoInstall(false)
}
