//go:build !native

package main

// buildTags are the tags the test binary was built with, so the end-to-end
// test builds the server with the same engine.
const buildTags = ""
