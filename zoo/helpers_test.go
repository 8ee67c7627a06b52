package zoo

import "testing"

// firstBatch returns the first mini-batch of size n of a seeded batcher.
func firstBatch(t testing.TB, im *Images, n int) *Batch {
	t.Helper()
	b, err := NewImageBatcher(im, n, 1)
	if err != nil {
		t.Fatal(err)
	}
	return b.Next()
}

// circles returns a batch of n points of a seeded sampler.
func circles(t testing.TB, c *Circles, n int) *Batch {
	t.Helper()
	b, err := c.Batch(n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
