package events

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// asyncAPIDoc is the part of asyncapi.yaml the tests read.
type asyncAPIDoc struct {
	AsyncAPI string `yaml:"asyncapi"`
	Channels map[string]struct {
		Address  string
		Messages map[string]yamlRef
	}
	Operations map[string]struct {
		Action  string
		Channel yamlRef
	}
	Components struct {
		Messages map[string]struct {
			Name    string
			Headers struct {
				Ref      string `yaml:"$ref"`
				Required []string
			}
			Payload struct {
				AllOf []struct {
					Ref        string `yaml:"$ref"`
					Properties map[string]struct {
						Const string
						Ref   string `yaml:"$ref"`
					}
				} `yaml:"allOf"`
			}
			Examples []struct {
				Payload map[string]any
			}
		}
		Schemas map[string]struct {
			Required   []string
			Properties map[string]any
		}
	}
}

type yamlRef struct {
	Ref string `yaml:"$ref"`
}

// target is the last segment of a local reference: "#/components/schemas/Amount" → "Amount".
func (r yamlRef) target() string { return r.Ref[strings.LastIndexByte(r.Ref, '/')+1:] }

func loadAsyncAPI(t *testing.T) asyncAPIDoc {
	t.Helper()
	var doc asyncAPIDoc
	if err := yaml.Unmarshal(AsyncAPI, &doc); err != nil {
		t.Fatalf("asyncapi.yaml does not parse: %v", err)
	}
	return doc
}

const accountParam = ".{accountId}"

func TestAsyncAPIIsVersion3(t *testing.T) {
	if doc := loadAsyncAPI(t); doc.AsyncAPI != "3.0.0" {
		t.Fatalf("asyncapi = %q, want 3.0.0", doc.AsyncAPI)
	}
}

func TestAsyncAPIDescribesEveryCatalogType(t *testing.T) {
	doc := loadAsyncAPI(t)
	channelByType := map[Type]string{}
	for id, ch := range doc.Channels {
		if t, ok := strings.CutSuffix(ch.Address, accountParam); ok {
			channelByType[Type(t)] = id
		}
	}
	for _, spec := range Catalog() {
		t.Run(string(spec.Type), func(t *testing.T) {
			channelID, ok := channelByType[spec.Type]
			if !ok {
				t.Fatalf("no channel with address %s%s", spec.Type, accountParam)
			}

			var actions []string
			for _, op := range doc.Operations {
				if op.Channel.Ref == "#/channels/"+channelID {
					actions = append(actions, op.Action)
				}
			}
			want := map[Direction]string{Inbound: "receive", Outbound: "send"}[spec.Direction]
			if !slices.Equal(actions, []string{want}) {
				t.Errorf("operations on channel %s have actions %v, want exactly [%s] for an %s type", channelID, actions, want, spec.Direction)
			}

			refs := doc.Channels[channelID].Messages
			if len(refs) != 1 {
				t.Fatalf("channel %s has %d messages, want 1", channelID, len(refs))
			}
			var msgID string
			for _, r := range refs {
				msgID = r.target()
			}
			msg, ok := doc.Components.Messages[msgID]
			if !ok {
				t.Fatalf("channel %s refers to missing message %s", channelID, msgID)
			}
			if msg.Name != string(spec.Type) {
				t.Errorf("message %s is named %q, want %q", msgID, msg.Name, spec.Type)
			}
			if len(msg.Payload.AllOf) != 2 || msg.Payload.AllOf[0].Ref != "#/components/schemas/Envelope" {
				t.Fatalf("message %s payload must be allOf [Envelope, {type, data}]", msgID)
			}
			props := msg.Payload.AllOf[1].Properties
			if props["type"].Const != string(spec.Type) {
				t.Errorf("message %s payload type const = %q, want %q", msgID, props["type"].Const, spec.Type)
			}

			goType := reflect.TypeOf(spec.NewPayload()).Elem()
			schemaName := yamlRef{props["data"].Ref}.target()
			if schemaName != goType.Name() {
				t.Errorf("message %s data schema is %q, want the Go struct's name %q", msgID, schemaName, goType.Name())
			}
			compareSchemaWithStruct(t, doc, schemaName, goType)
		})
	}
}

func TestAsyncAPIHasNoChannelMissingFromTheCatalog(t *testing.T) {
	doc := loadAsyncAPI(t)
	for id, ch := range doc.Channels {
		if strings.HasPrefix(ch.Address, DeadLetterPrefix) {
			continue
		}
		typ, ok := strings.CutSuffix(ch.Address, accountParam)
		if !ok {
			t.Errorf("channel %s address %q does not end in %s", id, ch.Address, accountParam)
			continue
		}
		if _, ok := Lookup(Type(typ)); !ok {
			t.Errorf("channel %s carries %q, which is not in the catalog", id, typ)
		}
	}
	for name := range doc.Components.Schemas {
		if typ, ok := strings.CutSuffix(name, "Data"); ok && !hasPayloadNamed(typ+"Data") {
			t.Errorf("schema %s has no payload struct of that name in the catalog", name)
		}
	}
}

func hasPayloadNamed(name string) bool {
	for _, spec := range Catalog() {
		if reflect.TypeOf(spec.NewPayload()).Elem().Name() == name {
			return true
		}
	}
	return false
}

func TestAsyncAPISharedSchemasMatchTheirStructs(t *testing.T) {
	doc := loadAsyncAPI(t)
	t.Run("Envelope", func(t *testing.T) { compareSchemaWithStruct(t, doc, "Envelope", reflect.TypeFor[Envelope]()) })
	t.Run("Destination", func(t *testing.T) { compareSchemaWithStruct(t, doc, "Destination", reflect.TypeFor[Destination]()) })
}

func TestAsyncAPIDeadLetterChannel(t *testing.T) {
	doc := loadAsyncAPI(t)
	var channelID string
	for id, ch := range doc.Channels {
		if ch.Address == DeadLetterPrefix+"{originalSubject}" {
			channelID = id
		}
	}
	if channelID == "" {
		t.Fatalf("no channel with address %s{originalSubject}", DeadLetterPrefix)
	}
	var actions []string
	for _, op := range doc.Operations {
		if op.Channel.Ref == "#/channels/"+channelID {
			actions = append(actions, op.Action)
		}
	}
	if !slices.Equal(actions, []string{"send"}) {
		t.Errorf("dead letter operations have actions %v, want [send]", actions)
	}
	for _, r := range doc.Channels[channelID].Messages {
		msg := doc.Components.Messages[r.target()]
		for _, h := range []string{HeaderReason, HeaderOriginalSubject} {
			if !slices.Contains(msg.Headers.Required, h) {
				t.Errorf("dead letter message does not require header %s", h)
			}
		}
	}
}

// compareSchemaWithStruct checks that a schema's properties are exactly the
// struct's JSON fields and its required list exactly the fields without omitempty.
func compareSchemaWithStruct(t *testing.T, doc asyncAPIDoc, schemaName string, goType reflect.Type) {
	t.Helper()
	schema, ok := doc.Components.Schemas[schemaName]
	if !ok {
		t.Fatalf("no schema %s", schemaName)
	}
	var schemaProps []string
	for name := range schema.Properties {
		schemaProps = append(schemaProps, name)
	}
	slices.Sort(schemaProps)
	goProps := structJSONNames(goType)
	slices.Sort(goProps)
	if !slices.Equal(schemaProps, goProps) {
		t.Errorf("schema %s properties %v, Go %s fields %v", schemaName, schemaProps, goType.Name(), goProps)
	}

	schemaRequired := slices.Sorted(slices.Values(schema.Required))
	goRequired := slices.Sorted(slices.Values(requiredFields(goType)))
	if !slices.Equal(schemaRequired, goRequired) {
		t.Errorf("schema %s requires %v, Go %s requires %v", schemaName, schemaRequired, goType.Name(), goRequired)
	}
}

func structJSONNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// exampleEvents returns the example event of every message in asyncapi.yaml,
// as JSON, by type. They are the valid events the tests start from.
func exampleEvents(t *testing.T) map[Type][]byte {
	t.Helper()
	examples, err := parseExamples()
	if err != nil {
		t.Fatal(err)
	}
	return examples
}

// parseExamples reads the document once; tests must not change the map.
var parseExamples = sync.OnceValues(func() (map[Type][]byte, error) {
	var doc asyncAPIDoc
	if err := yaml.Unmarshal(AsyncAPI, &doc); err != nil {
		return nil, fmt.Errorf("asyncapi.yaml does not parse: %w", err)
	}
	examples := map[Type][]byte{}
	for id, msg := range doc.Components.Messages {
		if len(msg.Examples) == 0 {
			continue
		}
		raw, err := json.Marshal(msg.Examples[0].Payload)
		if err != nil {
			return nil, fmt.Errorf("example of message %s: %w", id, err)
		}
		examples[Type(msg.Name)] = raw
	}
	return examples, nil
})

// exampleEvent returns a fresh, modifiable copy of the example event of typ.
func exampleEvent(t *testing.T, typ Type) map[string]any {
	t.Helper()
	raw, ok := exampleEvents(t)[typ]
	if !ok {
		t.Fatalf("asyncapi.yaml has no example of %s", typ)
	}
	var env map[string]any
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	return env
}
