package deploy

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "sigs.k8s.io/yaml"
)

// manifests are the decoded objects of deploy/k8s, by kind and name.
type manifests struct {
	configMaps   map[string]*corev1.ConfigMap
	services     map[string]*corev1.Service
	statefulSets map[string]*appsv1.StatefulSet
	daemonSets   map[string]*appsv1.DaemonSet
}

// splitDocs splits a multi-document YAML file at its "---" lines.
func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(b []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// loadManifests decodes every document with the Kubernetes API types,
// strictly: an unknown or misspelt field, a wrong type or a duplicate
// field is an error, as `kubectl apply --validate=strict` would say.
func loadManifests(t *testing.T) manifests {
	t.Helper()
	m := manifests{map[string]*corev1.ConfigMap{}, map[string]*corev1.Service{}, map[string]*appsv1.StatefulSet{}, map[string]*appsv1.DaemonSet{}}
	for _, file := range []string{"k8s/server.yaml", "k8s/agent.yaml"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocs(b) {
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := k8syaml.Unmarshal(doc, &head); err != nil {
				t.Fatalf("%s document %d: %v", file, i+1, err)
			}
			where := fmt.Sprintf("%s document %d (%s)", file, i+1, head.Kind)
			var obj interface{ GetName() string }
			wantAPI := "v1"
			switch head.Kind {
			case "ConfigMap":
				o := &corev1.ConfigMap{}
				obj = o
				defer func() { m.configMaps[o.Name] = o }()
			case "Service":
				o := &corev1.Service{}
				obj = o
				defer func() { m.services[o.Name] = o }()
			case "StatefulSet":
				o := &appsv1.StatefulSet{}
				obj, wantAPI = o, "apps/v1"
				defer func() { m.statefulSets[o.Name] = o }()
			case "DaemonSet":
				o := &appsv1.DaemonSet{}
				obj, wantAPI = o, "apps/v1"
				defer func() { m.daemonSets[o.Name] = o }()
			default:
				t.Fatalf("%s: kind %q is not one the manifests should hold (RBAC-free: no ServiceAccount, Role or binding)", where, head.Kind)
			}
			if head.APIVersion != wantAPI {
				t.Errorf("%s: apiVersion %q, want %q", where, head.APIVersion, wantAPI)
			}
			if err := k8syaml.UnmarshalStrict(doc, obj); err != nil {
				t.Errorf("%s: %v", where, err)
			}
			if obj.GetName() == "" {
				t.Errorf("%s: no metadata.name", where)
			}
		}
	}
	return m
}

func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	if len(m.statefulSets) != 1 || len(m.daemonSets) != 1 {
		t.Fatalf("want one StatefulSet (server) and one DaemonSet (agent), have %d and %d", len(m.statefulSets), len(m.daemonSets))
	}
	var server *appsv1.StatefulSet
	for _, s := range m.statefulSets {
		server = s
	}
	var agent *appsv1.DaemonSet
	for _, d := range m.daemonSets {
		agent = d
	}

	checkPod(t, "StatefulSet "+server.Name, server.Spec.Selector.MatchLabels, server.Spec.Template, m, claimNames(server))
	checkPod(t, "DaemonSet "+agent.Name, agent.Spec.Selector.MatchLabels, agent.Spec.Template, m, nil)

	if server.Spec.Replicas == nil || *server.Spec.Replicas != 1 {
		t.Errorf("the server's embedded store is owned by one process: replicas must be 1")
	}
	gov, ok := m.services[server.Spec.ServiceName]
	if !ok || gov.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("StatefulSet serviceName %q must name a headless Service", server.Spec.ServiceName)
	}
	if sc := server.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("the server pod must run as non-root")
	}
	if a := agent.Spec.Template.Spec.AutomountServiceAccountToken; a == nil || *a {
		t.Errorf("the agent uses no Kubernetes API: automountServiceAccountToken must be false")
	}

	// Every Service selects a workload's pods and targets ports they have.
	for name, svc := range m.services {
		matched := false
		for _, tmpl := range []corev1.PodTemplateSpec{server.Spec.Template, agent.Spec.Template} {
			if selects(svc.Spec.Selector, tmpl.Labels) {
				matched = true
				for _, p := range svc.Spec.Ports {
					if !hasPort(tmpl.Spec.Containers, p.TargetPort) {
						t.Errorf("Service %s port %s targets %s, which no container of the selected pods exposes", name, p.Name, p.TargetPort.String())
					}
				}
			}
		}
		if !matched {
			t.Errorf("Service %s selects no pod", name)
		}
	}

	// The server's configuration loads, and listens where the pod and
	// Service expect.
	srvC := server.Spec.Template.Spec.Containers[0]
	cfgPath := flagValue(srvC.Args, "-config.file")
	cm, key := mountedConfigMap(t, server.Spec.Template.Spec, srvC, cfgPath, m)
	scfg, _ := loadServerConfig(t, "ConfigMap "+cm.Name+"/"+key, []byte(cm.Data[key]))
	for _, addr := range []string{scfg.HTTPListenAddress, scfg.GRPCListenAddress} {
		if !hasPort(srvC.Ports, intstr.FromInt32(portOf(t, addr))) {
			t.Errorf("the server listens on %s, which its container does not expose", addr)
		}
	}
	if scfg.DataDir != mountPathOf(srvC, "data") {
		t.Errorf("the server's data_dir %s is not its data volume's mount path %s", scfg.DataDir, mountPathOf(srvC, "data"))
	}

	// The agent's configuration (with the node name the init container
	// writes in) is valid, ships to the server's Service, and serves the
	// port its probes read.
	agC := agent.Spec.Template.Spec.Containers[0]
	agentCfgPath := flagValue(agC.Args, "--config")
	var tmplCM *corev1.ConfigMap
	for _, v := range agent.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			tmplCM = m.configMaps[v.ConfigMap.Name]
		}
	}
	if tmplCM == nil {
		t.Fatal("the agent DaemonSet mounts no ConfigMap")
	}
	init := agent.Spec.Template.Spec.InitContainers
	if len(init) != 1 || !strings.Contains(strings.Join(init[0].Command, " "), path.Base(agentCfgPath)) {
		t.Errorf("the init container must write %s", agentCfgPath)
	}
	acfg := parseAgentConfig(t, "ConfigMap "+tmplCM.Name, []byte(strings.ReplaceAll(tmplCM.Data["agent.yaml"], "__NODE_NAME__", "node-1")))
	if acfg != nil {
		host, port, _ := net.SplitHostPort(acfg.Output.URL)
		svc, ok := m.services[host]
		if !ok {
			t.Errorf("the agent ships to %s, which is not a Service here", acfg.Output.URL)
		} else if !servicePort(svc, port) {
			t.Errorf("the agent ships to port %s, which Service %s does not have", port, host)
		}
		if !hasPort(agC.Ports, intstr.FromInt32(portOf(t, acfg.Metrics.ListenAddress))) {
			t.Errorf("the agent's metrics listen on %s, which its container does not expose", acfg.Metrics.ListenAddress)
		}
		if acfg.DataDir != mountPathOf(agC, "state") {
			t.Errorf("the agent's data_dir %s is not on its hostPath state volume (%s): a new pod would lose the spool and positions", acfg.DataDir, mountPathOf(agC, "state"))
		}
		for _, g := range acfg.Files {
			if g.Labels["host"] != "node-1" {
				t.Errorf("files %v: host label %q is not the node name", g.Paths, g.Labels["host"])
			}
		}
	}
}

func claimNames(s *appsv1.StatefulSet) map[string]bool {
	out := map[string]bool{}
	for _, c := range s.Spec.VolumeClaimTemplates {
		out[c.Name] = true
	}
	return out
}

// checkPod checks a workload's selector, volumes, mounts and probes.
func checkPod(t *testing.T, what string, selector map[string]string, tmpl corev1.PodTemplateSpec, m manifests, claims map[string]bool) {
	t.Helper()
	if len(selector) == 0 || !selects(selector, tmpl.Labels) {
		t.Errorf("%s: selector %v does not match its pod labels %v", what, selector, tmpl.Labels)
	}
	vols := map[string]bool{}
	for n := range claims {
		vols[n] = true
	}
	for _, v := range tmpl.Spec.Volumes {
		vols[v.Name] = true
		if v.ConfigMap != nil {
			if _, ok := m.configMaps[v.ConfigMap.Name]; !ok {
				t.Errorf("%s: volume %s uses ConfigMap %s, which the manifests do not define", what, v.Name, v.ConfigMap.Name)
			}
		}
	}
	for _, c := range append(append([]corev1.Container{}, tmpl.Spec.InitContainers...), tmpl.Spec.Containers...) {
		if c.Image == "" {
			t.Errorf("%s: container %s has no image", what, c.Name)
		}
		if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
			t.Errorf("%s: container %s must set allowPrivilegeEscalation: false", what, c.Name)
		}
		for _, vm := range c.VolumeMounts {
			if !vols[vm.Name] {
				t.Errorf("%s: container %s mounts volume %s, which the pod does not have", what, c.Name, vm.Name)
			}
		}
		for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
			if p != nil && p.HTTPGet != nil && !hasPort(c.Ports, p.HTTPGet.Port) {
				t.Errorf("%s: container %s probes port %s, which it does not expose", what, c.Name, p.HTTPGet.Port.String())
			}
		}
	}
	if len(tmpl.Spec.Containers) > 0 && tmpl.Spec.Containers[0].ReadinessProbe == nil {
		t.Errorf("%s: no readiness probe", what)
	}
}

func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func hasPort(cs any, port intstr.IntOrString) bool {
	var ports []corev1.ContainerPort
	switch v := cs.(type) {
	case []corev1.Container:
		for _, c := range v {
			ports = append(ports, c.Ports...)
		}
	case []corev1.ContainerPort:
		ports = v
	}
	for _, p := range ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return true
		}
	}
	return false
}

func servicePort(svc *corev1.Service, port string) bool {
	for _, p := range svc.Spec.Ports {
		if strconv.Itoa(int(p.Port)) == port {
			return true
		}
	}
	return false
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("port of %q: %v", addr, err)
	}
	return int32(n)
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func mountPathOf(c corev1.Container, volume string) string {
	for _, vm := range c.VolumeMounts {
		if vm.Name == volume {
			return vm.MountPath
		}
	}
	return ""
}

// mountedConfigMap finds the ConfigMap and key that a container sees at
// file.
func mountedConfigMap(t *testing.T, pod corev1.PodSpec, c corev1.Container, file string, m manifests) (*corev1.ConfigMap, string) {
	t.Helper()
	for _, vm := range c.VolumeMounts {
		if path.Dir(file) != vm.MountPath {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil {
				cm := m.configMaps[v.ConfigMap.Name]
				if cm == nil {
					t.Fatalf("ConfigMap %s is not defined", v.ConfigMap.Name)
				}
				key := path.Base(file)
				if _, ok := cm.Data[key]; !ok {
					t.Fatalf("ConfigMap %s has no key %s for %s", cm.Name, key, file)
				}
				return cm, key
			}
		}
	}
	t.Fatalf("no ConfigMap is mounted where container %s reads %s", c.Name, file)
	return nil, ""
}
