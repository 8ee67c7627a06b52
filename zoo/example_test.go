package zoo_test

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/backend"
	"github.com/snopt-go/snopt/zoo"
)

// The paper's image classifier (feature extractor, ODE block of two
// convolutions, head) on MNIST-format data: one training step with the
// Kronecker statistics of every preconditionable layer (stem and head
// layers as in K-FAC, the ODE block's on the adjoint's time grid).
func ExampleNewClassifier() {
	b, err := backend.New()
	if err != nil {
		panic(err)
	}
	// README:zoo begin
	train, _, err := zoo.LoadMNIST("../testdata/mnist-small") // or zoo.MNISTDir()
	if err != nil {
		panic(err)
	}
	batches, err := zoo.NewImageBatcher(train, 16, 1)
	if err != nil {
		panic(err)
	}
	model, err := zoo.NewClassifier(b, context.New(), zoo.ClassifierConfig{Width: 4})
	if err != nil {
		panic(err)
	}
	res, err := model.Step(batches.Next(), true) // loss, accuracy, gradients, Kronecker factors
	if err != nil {
		panic(err)
	}
	// README:zoo end
	fmt.Println("loss finite:", !math.IsNaN(res.Loss) && !math.IsInf(res.Loss, 0))
	fmt.Println("parameters:", len(model.Params()), "of which in the ODE block:", len(model.ODEParams()))
	fmt.Println("gradients:", len(res.Grads), "preconditionable layers:", len(res.Stats))
	// Output:
	// loss finite: true
	// parameters: 9 of which in the ODE block: 4
	// gradients: 9 preconditionable layers: 6
}
