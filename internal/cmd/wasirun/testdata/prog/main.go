// Command prog is wasirun's test program: it prints its arguments, an
// environment variable and a file read relative to the working directory,
// then exits with the code given as its first argument.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	b, err := os.ReadFile("testdata/hello.txt")
	fmt.Printf("args=%q env=%s file=%q err=%v\n", os.Args[1:], os.Getenv("WASIRUN_TEST"), b, err)
	code, _ := strconv.Atoi(os.Args[1])
	os.Exit(code)
}
