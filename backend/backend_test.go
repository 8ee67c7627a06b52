package backend

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultIsPureGo(t *testing.T) {
	t.Setenv(EnvVar, "")
	b, err := New()
	require.NoError(t, err)
	assert.Equal(t, "SimpleGo (go)", b.Name())
}

func TestUnlinkedBackendIsAnError(t *testing.T) {
	var err error
	assert.NotPanics(t, func() { _, err = NewWithConfig("nosuchbackend:foo") })
	assert.ErrorContains(t, err, "not linked")
}

func TestBadSimpleGoOptionIsAnError(t *testing.T) {
	_, err := NewWithConfig("go:nosuchoption")
	assert.Error(t, err)
}
