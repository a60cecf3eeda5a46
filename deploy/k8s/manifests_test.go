// Package k8s holds the Kubernetes manifests of refundd; this test reads them as a
// platform team's checks would, since no cluster runs here.
package k8s

import (
	"os"
	"testing"

	"go.yaml.in/yaml/v3"
)

func load(t *testing.T, file string, into any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

type probe struct {
	HTTPGet struct{ Path string } `yaml:"httpGet"`
}

func TestTheDeploymentProbesStopsGracefullyAndIsBudgeted(t *testing.T) {
	var kustomization struct{ Resources []string }
	load(t, "kustomization.yaml", &kustomization)
	for _, r := range kustomization.Resources {
		if _, err := os.Stat(r); err != nil {
			t.Errorf("kustomization lists %s: %v", r, err)
		}
	}
	var d struct {
		Spec struct {
			Replicas int
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			}
			Template struct {
				Spec struct {
					Grace      int `yaml:"terminationGracePeriodSeconds"`
					Containers []struct {
						Image     string
						Liveness  probe `yaml:"livenessProbe"`
						Readiness probe `yaml:"readinessProbe"`
						Resources struct {
							Requests map[string]string
						}
						Env []struct{ Name string }
					}
				}
			}
		}
	}
	load(t, "deployment.yaml", &d)
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want refundd alone", len(spec.Containers))
	}
	c := spec.Containers[0]
	switch {
	case c.Liveness.HTTPGet.Path != "/healthz" || c.Readiness.HTTPGet.Path != "/readyz":
		t.Errorf("probes %q and %q, want /healthz and /readyz", c.Liveness.HTTPGet.Path, c.Readiness.HTTPGet.Path)
	case spec.Grace < 45:
		t.Errorf("grace period %ds: shorter than a drain may take", spec.Grace)
	case c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "":
		t.Errorf("resource requests %v, want cpu and memory", c.Resources.Requests)
	case d.Spec.Replicas < 2:
		t.Errorf("%d replicas, want at least 2", d.Spec.Replicas)
	}
	instance := false
	for _, e := range c.Env {
		instance = instance || e.Name == "REFUNDS_INSTANCE"
	}
	if !instance {
		t.Error("REFUNDS_INSTANCE is not set per pod: replicas would share an outbox consumer name")
	}
	var pdb struct {
		Spec struct {
			MinAvailable int `yaml:"minAvailable"`
			Selector     struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			}
		}
	}
	load(t, "pdb.yaml", &pdb)
	if pdb.Spec.MinAvailable < 1 || pdb.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != d.Spec.Selector.MatchLabels["app.kubernetes.io/name"] {
		t.Errorf("disruption budget %+v does not keep a refundd replica", pdb.Spec)
	}
}
