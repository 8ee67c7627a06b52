package readme

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// region is a marked part of an example file, dedented, with that file's
// import lines.
type region struct {
	file, body string
	imports    map[string]bool
	// example is the Example function the region lies in.
	example string
}

var marker = regexp.MustCompile(`^\s*// README:(\w+) (begin|end)\s*$`)

var exampleFunc = regexp.MustCompile(`^func (Example\w*)\(\)`)

// regions collects the README regions of every *_test.go file of the module.
func regions(t *testing.T, root string) map[string]region {
	out := map[string]region{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		lines := strings.Split(string(data), "\n")
		imports := importLines(lines)
		example := ""
		for i := 0; i < len(lines); i++ {
			if f := exampleFunc.FindStringSubmatch(lines[i]); f != nil {
				example = f[1]
			}
			m := marker.FindStringSubmatch(lines[i])
			if m == nil || m[2] != "begin" {
				continue
			}
			var body []string
			for i++; i < len(lines) && !marker.MatchString(lines[i]); i++ {
				body = append(body, strings.TrimPrefix(lines[i], "\t"))
			}
			require.NotContains(t, out, m[1], "region %s marked twice", m[1])
			rel, _ := filepath.Rel(root, path)
			out[m[1]] = region{file: filepath.ToSlash(rel), body: strings.TrimSpace(strings.Join(body, "\n")), imports: imports, example: example}
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// importLines are the trimmed lines of a file's import block.
func importLines(lines []string) map[string]bool {
	out := map[string]bool{}
	in := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "import ("):
			in = true
		case in && l == ")":
			return out
		case in && strings.TrimSpace(l) != "":
			out[strings.TrimSpace(l)] = true
		}
	}
	return out
}

// TestReadmeSnippetsAreCompiledExamples: each ```go block of README.md,
// past its import block, is exactly some example's README region, and its
// imports are that example file's.
func TestReadmeSnippetsAreCompiledExamples(t *testing.T) {
	root := filepath.Join("..", "..")
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	regs := regions(t, root)
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatchIndex(string(data), -1)
	require.NotEmpty(t, blocks)
	used := map[string]bool{}
	for _, at := range blocks {
		code := string(data[at[2]:at[3]])
		// The paragraph before the block says whose excerpt it is.
		lead := string(data[max(0, at[0]-400):at[0]])
		var imports []string
		if strings.HasPrefix(code, "import (") {
			end := strings.Index(code, "\n)\n")
			require.Positive(t, end, "unterminated import block")
			for _, l := range strings.Split(code[len("import ("):end], "\n") {
				if l = strings.TrimSpace(l); l != "" {
					imports = append(imports, l)
				}
			}
			code = code[end+3:]
		}
		code = strings.TrimSpace(code)
		found := ""
		for name, r := range regs {
			if r.body == code {
				found = name
			}
		}
		if !assert.NotEmpty(t, found, "README snippet starting %q is no example's README region", firstLine(code)) {
			continue
		}
		used[found] = true
		mark := strings.Join(strings.Fields(fmt.Sprintf("excerpt of `%s` (%s)", regs[found].example, regs[found].file)), " ")
		assert.Contains(t, strings.ToLower(strings.Join(strings.Fields(lead), " ")), strings.ToLower(mark),
			"the README's %s snippet must be introduced as an excerpt of its Example", found)
		require.NotEmpty(t, regs[found].example, "region %s lies in no Example function", found)
		for _, imp := range imports {
			assert.True(t, regs[found].imports[imp], "README's %s snippet imports %s, which %s does not", found, imp, regs[found].file)
		}
	}
	for name, r := range regs {
		assert.True(t, used[name], "region %s of %s is not in README.md", name, r.file)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
