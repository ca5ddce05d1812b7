{{- define "restart-manager.labels" -}}
app.kubernetes.io/name: restart-manager
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
{{- define "restart-manager.selector" -}}
app.kubernetes.io/name: restart-manager
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
{{- /* The resource of an allowlist kind, with the aliases the server accepts. */ -}}
{{- define "restart-manager.resource" -}}
{{- $k := lower . -}}
{{- if has $k (list "deployment" "deployments" "deploy") -}}deployments
{{- else if has $k (list "statefulset" "statefulsets" "sts") -}}statefulsets
{{- else if has $k (list "daemonset" "daemonsets" "ds") -}}daemonsets
{{- else -}}{{- fail (printf "config.services: unknown kind %q" .) -}}
{{- end -}}
{{- end }}
