package trainer_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/backend"
	"github.com/snopt-go/snopt/odeint"
	"github.com/snopt-go/snopt/snoptx"
	"github.com/snopt-go/snopt/trainer"
	"github.com/snopt-go/snopt/zoo"
)

// Train the Circle CNF with SNOpt for a few iterations with a CSV log and
// checkpoints; running the same code with Resume set continues a killed
// run exactly. Any type with MetricName and Step(batch, stats) trains the
// same way.
func ExampleRun() {
	dir, err := os.MkdirTemp("", "trainer-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	b, err := backend.New()
	if err != nil {
		panic(err)
	}
	// README:trainer begin
	ctx := context.New()
	model, err := zoo.NewCNF(b, ctx, zoo.CNFConfig{Width: 8, Hidden: 4, T1: 1,
		Solver: &odeint.Options{RTol: 1e-4, ATol: 1e-5}})
	if err != nil {
		panic(err)
	}
	data := zoo.NewCircles(1)
	first, err := data.Batch(32)
	if err != nil {
		panic(err)
	}
	if _, err := model.Step(first, false); err != nil { // creates the parameters
		panic(err)
	}
	opt, err := snoptx.SNOpt().LearningRate(0.01).RefreshEvery(5).Done()
	if err != nil {
		panic(err)
	}
	st, err := snoptx.NewStepper(b, ctx, opt, model.Params())
	if err != nil {
		panic(err)
	}
	next := func() (*zoo.Batch, error) { return data.Batch(32) }
	res, err := trainer.Run(model, st, next, nil, trainer.Config{
		Iterations: 6, CSV: filepath.Join(dir, "log.csv"),
		CheckpointDir: filepath.Join(dir, "ckpt"), CheckpointEvery: 3, Resume: true,
		State: map[string]trainer.Stateful{"data": data}, // the stream's position goes into each checkpoint
		Out:   os.Stdout,
	})
	if err != nil { // a *trainer.DivergedError names the iteration
		panic(err)
	}
	// README:trainer end
	fmt.Println("iterations:", res.Iterations, "logged:", len(res.Records), "refresh at 1 and 6:", res.Records[0].Stats, res.Records[5].Stats)
	// Output:
	// iterations: 6 logged: 6 refresh at 1 and 6: true true
}
