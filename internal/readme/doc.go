// Package readme holds the test that keeps README.md's Go snippets compiled:
// every ```go block of the README is a marked region of an Example function
// (between "// README:<name> begin" and "// README:<name> end"), with the
// imports that the example's file has.
package readme
