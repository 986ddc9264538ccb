// Command kstatus reads Kubernetes objects as JSON (one per line) on stdin and prints, for each,
// the status kstatus computes: "<status> <message>".
package main

import (
	"bufio"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	// Keeps whole numbers int64, as kstatus reads metadata.generation; encoding/json makes
	// every number a float64 and kstatus then refuses the object.
	"k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	for scanner.Scan() {
		var object map[string]interface{}
		if err := json.Unmarshal(scanner.Bytes(), &object); err != nil {
			fmt.Fprintln(os.Stderr, "kstatus: input is not a JSON object:", err)
			os.Exit(2)
		}
		result, err := status.Compute(&unstructured.Unstructured{Object: object})
		if err != nil {
			fmt.Fprintln(os.Stderr, "kstatus:", err)
			os.Exit(2)
		}
		fmt.Printf("%s %s\n", result.Status, result.Message)
	}
	if err := scanner.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading stdin:", err)
		os.Exit(2)
	}
}
