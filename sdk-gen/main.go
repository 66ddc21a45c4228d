// Command sdk-gen turns schema/schema.json into the TypeScript, Python and
// Go SDKs with Pulumi's own code generators, stamping the package version.
// `--check` regenerates into a temporary directory and fails when the
// committed SDKs differ.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	gogen "github.com/pulumi/pulumi/pkg/v3/codegen/go"
	nodejsgen "github.com/pulumi/pulumi/pkg/v3/codegen/nodejs"
	pythongen "github.com/pulumi/pulumi/pkg/v3/codegen/python"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

const tool = "pulumi-securepipeline-sdk-gen"

// Where each SDK is written, relative to -out.
const (
	nodejsDir = "nodejs"
	pythonDir = "python"
	// The Go SDK's module (github.com/securepipeline/pulumi-securepipeline/sdk)
	// is rooted at -out; its go.mod and go.sum are kept by `go mod tidy`.
	goDir = "go/securepipeline"
)

func main() {
	schemaPath := flag.String("schema", "schema/schema.json", "package schema")
	outDir := flag.String("out", "sdk", "where the SDKs go")
	version := flag.String("version", "", "package version to stamp (required)")
	check := flag.Bool("check", false, "fail if the SDKs in -out differ from a fresh generation")
	flag.Parse()
	if *version == "" {
		fail("-version is required")
	}

	sdks, err := generate(*schemaPath, *version)
	if err != nil {
		fail(err.Error())
	}
	if *check {
		if diffs := compare(*outDir, sdks); len(diffs) > 0 {
			for _, d := range diffs {
				fmt.Fprintln(os.Stderr, d)
			}
			fail("the committed SDKs are stale: run `make sdks`")
		}
		fmt.Println("SDKs match the schema")
		return
	}
	for dir, files := range sdks {
		if err := write(filepath.Join(*outDir, dir), files); err != nil {
			fail(err.Error())
		}
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "sdk-gen:", message)
	os.Exit(1)
}

func load(path, version string) (*schema.Package, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var spec schema.PackageSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	spec.Version = version
	pkg, diags, err := schema.BindSpec(spec, noDependencies{}, schema.ValidationOptions{})
	if err != nil {
		return nil, err
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return pkg, nil
}

// generate returns each SDK's files, keyed by directory then path. Each
// generator gets its own bound package: generators record language data on it.
func generate(schemaPath, version string) (map[string]map[string][]byte, error) {
	sdks := map[string]map[string][]byte{}

	pkg, err := load(schemaPath, version)
	if err != nil {
		return nil, err
	}
	if sdks[nodejsDir], err = nodejsgen.GeneratePackage(tool, pkg, nil, nil, false, noDependencies{}); err != nil {
		return nil, fmt.Errorf("nodejs: %w", err)
	}

	if pkg, err = load(schemaPath, version); err != nil {
		return nil, err
	}
	if sdks[pythonDir], err = pythongen.GeneratePackage(tool, pkg, nil, noDependencies{}); err != nil {
		return nil, fmt.Errorf("python: %w", err)
	}

	if pkg, err = load(schemaPath, version); err != nil {
		return nil, err
	}
	if sdks[goDir], err = gogen.GeneratePackage(tool, pkg, nil); err != nil {
		return nil, fmt.Errorf("go: %w", err)
	}
	return sdks, nil
}

func write(dir string, files map[string][]byte) error {
	// Keep files that are not generated (the Go module's go.sum, installed
	// node_modules); replace everything the generator owns.
	for path, content := range files {
		target := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(target, content, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func compare(outDir string, sdks map[string]map[string][]byte) []string {
	var diffs []string
	for sub, files := range sdks {
		dir := filepath.Join(outDir, sub)
		for path, want := range files {
			got, err := os.ReadFile(filepath.Join(dir, path))
			if err != nil {
				diffs = append(diffs, fmt.Sprintf("missing %s/%s", sub, path))
			} else if !bytes.Equal(got, want) {
				diffs = append(diffs, fmt.Sprintf("differs %s/%s", sub, path))
			}
		}
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				if d != nil && d.IsDir() && (d.Name() == "node_modules" || d.Name() == "bin" || d.Name() == "__pycache__") {
					return filepath.SkipDir
				}
				return err
			}
			rel, relErr := filepath.Rel(dir, path)
			if relErr == nil && files[rel] == nil && !buildOutput(rel) {
				diffs = append(diffs, fmt.Sprintf("not generated %s/%s", sub, rel))
			}
			return nil
		})
	}
	sort.Strings(diffs)
	return diffs
}

// buildOutput names files that building an SDK adds beside the generated ones.
func buildOutput(rel string) bool {
	switch filepath.Base(rel) {
	case "go.sum", "package-lock.json":
		return true
	}
	return false
}
