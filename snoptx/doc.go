// Package snoptx is the SNOpt optimizer (Liu, Chen & Theodorou, NeurIPS
// 2021, §3.2 eq. 14 and Alg. 1 line 10) and the first-order baselines it is
// compared with, in GoMLX's optimizer conventions.
//
// # How to use it
//
// In a GoMLX model trained by train.Trainer (see ExampleAttach):
//
//  1. Build the dense and convolution layers with Dense and Conv2D instead
//     of GoMLX's layers.Dense and a convolution: the same variables and
//     initialisers, and SNOpt can precondition them.
//  2. Create the optimizer, SNOpt().LearningRate(…).Done(), and pass it to
//     train.NewTrainer like any GoMLX optimizer.
//  3. Call Attach(loop, opt) once after train.NewLoop. It makes the loop
//     collect each layer's Kronecker factors on refresh steps and refresh
//     the eigenbases after them.
//
// Without Attach (or the manual form: the context parameter
// ParamCollectStats on refresh steps, then RefreshFromContext), the first
// update is an ErrInvalid error that says so. SNOpt never trains silently
// as plain SGD. Variables outside Dense/Conv2D layers take the momentum
// step and are listed once. Gradient accumulation
// (train.Trainer.AccumulateGradients) accumulates the factors of every
// micro-batch as it does the gradients.
//
// With gradients computed outside any graph (an ODE block through adjointx,
// a zoo model), wrap the parameters in a Stepper (NewStepper). Pass the
// statistics on the iterations where Stepper.NeedsStats says so (see
// ExampleStepper). A Group gives each part of a model its own optimizer.
// A Segment runs ordinary GoMLX code (with Dense/Conv2D) as one part of
// such a model: its forward pass, its VJP and its factors.
//
// SGD (momentum) and Adam (GoMLX's) run on the same pipelines, for
// comparisons.
//
// An update is a chain of separable steps (optax style):
//
//	SNOpt: weight decay → Kronecker-eigenbasis preconditioning → momentum → learning rate
//	SGD:   weight decay → momentum → learning rate
//	Adam:  GoMLX's Adam
//
// The preconditioner keeps, per layer ("curvature block", keyed by the
// layer's weight variable), the eigenbases U_A, U_B of the Kronecker factors
// Ā, B̄ (eq. 13) and EKFAC's second moments m2 in that basis (George et al.
// 2018). Every K iterations (the refresh cadence) the factors collected by
// adjointx (or by field layers outside the ODE block) are eigendecomposed on
// the host with gonum and m2 is reset to the eigenvalue products; on every
// iteration the gradient G (weights with the bias as last row) is rotated,
// m2 ← α·m2 + (1−α)·batch·G'², and
//
//	update = U_A (G' / (m2 + ε + γ)) U_Bᵀ,   G' = U_Aᵀ (G + γθ) U_B,
//
// which right after a refresh with α = 1 is (Locations·Ā ⊗ B̄ + (ε+γ)I)⁻¹ vec(G
// + γθ) — eq. (14) with Tikhonov damping ε and the weight decay γ of §3.2's
// Remark. Parameters outside any block take the plain momentum step.
//
// State (momentum buffers, eigenbases, m2, the step counter) lives in context
// variables under the optimizer's scope, so GoMLX checkpoints carry it.
//
// # GoMLX conventions
//
// SNOpt and SGD follow GoMLX's optimizers: every update advances the global
// step (optimizers.GetGlobalStep, which names GoMLX checkpoints); the
// learning rate is GoMLX's learning-rate variable (optimizers.LearningRateVar,
// created with the configured rate), so schedules such as cosineschedule
// drive it; FromContext reads optimizers.ParamLearningRate and the
// ParamSNOpt…/ParamSGD… context parameters; UpdateGraphWithGradients makes
// them usable with train.Trainer.AccumulateGradients; and the context
// parameters optimizers.ParamClipStepByValue and optimizers.ParamClipNaN
// clip steps and drop NaN gradients. One learning-rate variable serves the
// context, as in GoMLX.
package snoptx
