{{/* Names and labels. */}}
{{- define "ferry.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ferry.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ferry.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "ferry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component (api, worker, migrate). */}}
{{- define "ferry.selector" -}}
app.kubernetes.io/name: {{ include "ferry.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ferry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ferry.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ferry.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/*
ferry.check refuses what the chart must not render: a secret setting
inline in env, a FERRY_ setting the chart sets itself, no targets file.
*/}}
{{- define "ferry.check" -}}
{{- range $name := list "FERRY_DATABASE_URL" "FERRY_S3_ACCESS_KEY" "FERRY_S3_SECRET_KEY" "FERRY_METRICS_KEY" "FERRY_API_KEY" }}
{{- if hasKey $.Values.env $name }}
{{- fail (printf "env.%s holds a secret: give it under secretEnv, from an existing Secret" $name) }}
{{- end }}
{{- end }}
{{- range $name := list "FERRY_LISTEN" "FERRY_TARGETS" "FERRY_METRICS_LISTEN" "FERRY_NO_MIGRATE" "FERRY_SHUTDOWN_GRACE" }}
{{- if or (hasKey $.Values.env $name) (hasKey $.Values.secretEnv $name) }}
{{- fail (printf "%s is set by the chart (ports, targets, migrate, api/worker.shutdownGraceSeconds)" $name) }}
{{- end }}
{{- end }}
{{- range $name, $_ := merge (dict) $.Values.env $.Values.secretEnv }}
{{- if not (or (hasPrefix "FERRY_" $name) (hasPrefix "OTEL_" $name)) }}
{{- fail (printf "%s: env and secretEnv take ferry's FERRY_* settings and the OTEL_* of tracing only (the targets file's variables go in targets.envFrom)" $name) }}
{{- end }}
{{- end }}
{{- if and (not .Values.targets.configMap) (not .Values.targets.secret) }}
{{- fail "targets.configMap or targets.secret must name the existing ConfigMap or Secret holding the targets file" }}
{{- end }}
{{- if and .Values.targets.configMap .Values.targets.secret }}
{{- fail "give targets.configMap or targets.secret, not both" }}
{{- end }}
{{- end -}}

{{/* The environment of every ferry container; .grace is the shutdown grace. */}}
{{- define "ferry.env" -}}
- name: FERRY_LISTEN
  value: {{ printf "0.0.0.0:%v" .root.Values.ports.http | quote }}
- name: FERRY_METRICS_LISTEN
  value: {{ printf "0.0.0.0:%v" .root.Values.ports.metrics | quote }}
- name: FERRY_TARGETS
  value: /etc/ferry/targets/{{ .root.Values.targets.key }}
- name: FERRY_NO_MIGRATE
  value: {{ .root.Values.migrate.enabled | quote }}
- name: FERRY_SHUTDOWN_GRACE
  value: {{ printf "%vs" .grace | quote }}
{{- range $name, $value := .root.Values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- range $name, $ref := .root.Values.secretEnv }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "secretEnv.%s.name" $name) $ref.name }}
      key: {{ required (printf "secretEnv.%s.key" $name) $ref.key }}
{{- end }}
{{- end -}}

{{/* The targets file's volume. */}}
{{- define "ferry.targetsVolume" -}}
- name: targets
{{- if .Values.targets.secret }}
  secret:
    secretName: {{ .Values.targets.secret }}
{{- else }}
  configMap:
    name: {{ .Values.targets.configMap }}
{{- end }}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "ferry.volumeMounts" -}}
- name: targets
  mountPath: /etc/ferry/targets
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}
