//go:build race

package main

// raceDetector is true under -race, where tests avoid known races inside
// whatsmeow itself.
const raceDetector = true
