{{/* The labels every object of the release carries. */}}
{{- define "agentry.labels" -}}
app.kubernetes.io/part-of: agentry
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* REGISTRY/REPOSITORY:TAG for a component; the argument is (list $ repository). */}}
{{- define "agentry.image" -}}
{{- $root := index . 0 -}}
{{- $repository := index . 1 -}}
{{- printf "%s%s:%s" $root.Values.image.registry $repository (default $root.Chart.AppVersion $root.Values.image.tag) -}}
{{- end -}}

{{/* The securityContext every container of the chart runs with, unless it says otherwise. */}}
{{- define "agentry.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities: {drop: [ALL]}
{{- end -}}

{{/* The pod securityContext: the "nonroot" user the images and the agents' pods share. */}}
{{- define "agentry.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "agentry.pullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}
