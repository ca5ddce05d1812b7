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
