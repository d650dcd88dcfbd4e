// Command checker tells whether a history of etcd KV operations, recorded by the SDK's robustness
// tests, is linearizable, with porcupine. It reads the history as JSON (see history below), prints
// a JSON verdict on stdout and, when the history is not linearizable, writes porcupine's HTML
// visualisation of it to the path given by -visualize.
//
// The model is etcd's KV store on a few keys with its revision: every write that changes something
// makes a new revision, and responses report it, so a write applied twice (or not at all when it
// said it was) leaves revisions no order of the operations explains. An operation whose outcome is
// unknown (the client lost its answer) completes at infinity: porcupine may then order it anywhere
// after its call, including after everything else, which is the same as never applied.
// Serializable reads may be stale, which linearizability forbids: they are left out here and
// checked against the revision they report by the test itself.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// maxKeys is how many keys a history may use: the state is a fixed array, so states compare with ==.
const maxKeys = 8

type input struct {
	Op    string `json:"op"` // put, get, delete, txn
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
	// txn: if mod_revision(key) == ExpectModRevision then put(key, value) else get(key).
	ExpectModRevision int64 `json:"expectModRevision,string,omitempty"`
	Serializable      bool  `json:"serializable,omitempty"`
}

type output struct {
	Revision    int64  `json:"revision,string"`
	Found       bool   `json:"found,omitempty"`
	Value       string `json:"value,omitempty"`
	ModRevision int64  `json:"modRevision,string,omitempty"`
	Succeeded   bool   `json:"succeeded,omitempty"`
	Deleted     int64  `json:"deleted,string,omitempty"`
}

type operation struct {
	Client int     `json:"client"`
	Call   int64   `json:"call"`
	Return int64   `json:"return"` // -1: the outcome is unknown
	Input  input   `json:"input"`
	Output *output `json:"output"` // nil when the outcome is unknown
	Error  string  `json:"error,omitempty"`
}

type annotation struct {
	Start       int64  `json:"start"`
	End         int64  `json:"end"`
	Description string `json:"description"`
}

type history struct {
	InitialRevision int64        `json:"initialRevision,string"`
	Operations      []operation  `json:"operations"`
	Annotations     []annotation `json:"annotations"`
}

type entry struct {
	present bool
	value   string
	mod     int64
}

type state struct {
	rev int64
	kv  [maxKeys]entry
}

// modelInput is an operation's input with its key as an index into the state.
type modelInput struct {
	input
	index int
}

// step applies an operation to a state and tells whether the output is what etcd would answer
// there. out is nil for an operation whose outcome is unknown: any answer would do.
func step(s state, in modelInput, out *output) (bool, state) {
	e := s.kv[in.index]
	switch in.Op {
	case "put":
		s.rev++
		s.kv[in.index] = entry{present: true, value: in.Value, mod: s.rev}
		return out == nil || out.Revision == s.rev, s
	case "get":
		return out == nil || readMatches(s, e, out), s
	case "delete":
		if !e.present {
			return out == nil || (out.Deleted == 0 && out.Revision == s.rev), s
		}
		s.rev++
		s.kv[in.index] = entry{}
		return out == nil || (out.Deleted == 1 && out.Revision == s.rev), s
	case "txn":
		// A missing key's mod_revision compares as 0, as etcd does.
		if e.mod == in.ExpectModRevision {
			s.rev++
			s.kv[in.index] = entry{present: true, value: in.Value, mod: s.rev}
			return out == nil || (out.Succeeded && out.Revision == s.rev), s
		}
		return out == nil || (!out.Succeeded && readMatches(s, e, out)), s
	}
	panic("unknown operation " + in.Op)
}

func readMatches(s state, e entry, out *output) bool {
	if out.Revision != s.rev || out.Found != e.present {
		return false
	}
	return !e.present || (out.Value == e.value && out.ModRevision == e.mod)
}

func model(keys []string, initialRevision int64) porcupine.Model {
	return porcupine.Model{
		Init: func() interface{} { return state{rev: initialRevision} },
		Step: func(st, in, out interface{}) (bool, interface{}) {
			o, _ := out.(*output)
			return step(st.(state), in.(modelInput), o)
		},
		Equal: func(a, b interface{}) bool { return a.(state) == b.(state) },
		Hash: func(st interface{}) uint64 {
			h := fnv.New64a()
			fmt.Fprintf(h, "%v", st.(state))
			return h.Sum64()
		},
		DescribeOperation: func(in, out interface{}) string { return describeOperation(in.(modelInput), out) },
		DescribeState: func(st interface{}) string {
			s := st.(state)
			var parts []string
			for i, key := range keys {
				if e := s.kv[i]; e.present {
					parts = append(parts, fmt.Sprintf("%s=%s@%d", key, e.value, e.mod))
				}
			}
			return fmt.Sprintf("rev %d {%s}", s.rev, strings.Join(parts, ", "))
		},
		DescribeOperationMetadata: func(info interface{}) string {
			if info == nil {
				return ""
			}
			return info.(string)
		},
	}
}

func describeOperation(in modelInput, out interface{}) string {
	var call string
	switch in.Op {
	case "put":
		call = fmt.Sprintf("put(%s, %s)", in.Key, in.Value)
	case "get":
		call = fmt.Sprintf("get(%s)", in.Key)
	case "delete":
		call = fmt.Sprintf("delete(%s)", in.Key)
	case "txn":
		call = fmt.Sprintf("txn(mod(%s) == %d ? put(%s) : get)", in.Key, in.ExpectModRevision, in.Value)
	}
	o, _ := out.(*output)
	if o == nil {
		return call + " -> unknown"
	}
	var result string
	switch {
	case in.Op == "put":
		result = fmt.Sprintf("rev %d", o.Revision)
	case in.Op == "delete":
		result = fmt.Sprintf("deleted %d, rev %d", o.Deleted, o.Revision)
	case in.Op == "txn" && o.Succeeded:
		result = fmt.Sprintf("succeeded, rev %d", o.Revision)
	case o.Found:
		result = fmt.Sprintf("%s@%d, rev %d", o.Value, o.ModRevision, o.Revision)
	default:
		result = fmt.Sprintf("none, rev %d", o.Revision)
	}
	if in.Op == "txn" && !o.Succeeded {
		result = "failed, " + result
	}
	return call + " -> " + result
}

type verdict struct {
	Result        string `json:"result"` // Ok, Illegal or Unknown (timed out)
	Checked       int    `json:"checked"`
	Unknown       int    `json:"unknownOutcomes"`
	Visualization string `json:"visualization,omitempty"`
}

func check(h history, timeout time.Duration, visualize string) (verdict, error) {
	var keys []string
	index := map[string]int{}
	for _, op := range h.Operations {
		if _, ok := index[op.Input.Key]; !ok {
			index[op.Input.Key] = len(keys)
			keys = append(keys, op.Input.Key)
		}
	}
	if len(keys) > maxKeys {
		return verdict{}, fmt.Errorf("the history uses %d keys; the model takes at most %d", len(keys), maxKeys)
	}
	sort.SliceStable(h.Operations, func(i, j int) bool { return h.Operations[i].Call < h.Operations[j].Call })
	var ops []porcupine.Operation
	unknown := 0
	for _, op := range h.Operations {
		if op.Input.Serializable {
			continue
		}
		ret := op.Return
		var out interface{} = op.Output
		if ret < 0 || op.Output == nil {
			ret = math.MaxInt64
			out = (*output)(nil)
			unknown++
		}
		var metadata interface{}
		if op.Error != "" {
			metadata = op.Error
		}
		ops = append(ops, porcupine.Operation{
			ClientId: op.Client,
			Input:    modelInput{input: op.Input, index: index[op.Input.Key]},
			Call:     op.Call,
			Output:   out,
			Return:   ret,
			Metadata: metadata,
		})
	}
	m := model(keys, h.InitialRevision)
	result, info := porcupine.CheckOperationsVerbose(m, ops, timeout)
	v := verdict{Result: string(result), Checked: len(ops), Unknown: unknown}
	if result != porcupine.Ok && visualize != "" {
		var annotations []porcupine.Annotation
		for _, a := range h.Annotations {
			annotations = append(annotations, porcupine.Annotation{Tag: "fault", Start: a.Start, End: a.End, Description: a.Description, BackgroundColor: "#fde2e1"})
		}
		info.AddAnnotations(annotations)
		if err := porcupine.VisualizePath(m, info, visualize); err != nil {
			return v, fmt.Errorf("writing the visualisation: %w", err)
		}
		v.Visualization = visualize
	}
	return v, nil
}

func main() {
	path := flag.String("history", "", "the history, as JSON")
	visualize := flag.String("visualize", "", "where to write the HTML visualisation of a history that is not linearizable")
	timeout := flag.Duration("timeout", time.Minute, "how long porcupine may search before answering Unknown")
	flag.Parse()
	if *path == "" {
		fmt.Fprintln(os.Stderr, "usage: checker -history history.json [-visualize out.html] [-timeout 1m]")
		os.Exit(2)
	}
	raw, err := os.ReadFile(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var h history
	if err := json.Unmarshal(raw, &h); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", *path, err)
		os.Exit(2)
	}
	v, err := check(h, *timeout, *visualize)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
