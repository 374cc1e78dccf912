package main

import "github.com/ferry-relay/ferry/internal/termtext"

// printable is s made safe to print on a terminal (names, errors).
func printable(s string) string { return termtext.Clean(s) }
