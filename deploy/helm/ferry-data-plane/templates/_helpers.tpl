{{/* Names, labels and the settings Airbyte's chart also spells under `workloadLauncher`. */}}

{{- define "ferry-data-plane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ferry-data-plane.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ferry-data-plane.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "ferry-data-plane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferry-data-plane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ferry-data-plane.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ferry-data-plane.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: data-plane
{{- end }}

{{- define "ferry-data-plane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ferry-data-plane.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ferry-data-plane.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.registry }}
{{- printf "%s/%s:%s" (trimSuffix "/" .Values.image.registry) .Values.image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* A setting of Airbyte's `workloadLauncher` block when given, else this chart's. */}}
{{- define "ferry-data-plane.launcher" -}}
{{- $launcher := .root.Values.workloadLauncher | default dict }}
{{- $value := get $launcher .key }}
{{- if $value }}
{{- toYaml $value }}
{{- else }}
{{- toYaml (get .root.Values .key) }}
{{- end }}
{{- end }}

{{/* The Secret holding the client id and secret: the named one, else the chart's own. */}}
{{- define "ferry-data-plane.clientIdSecret" -}}
{{- if .Values.dataPlane.clientIdSecretName }}{{ .Values.dataPlane.clientIdSecretName }}{{ else }}{{ include "ferry-data-plane.fullname" . }}-credentials{{ end }}
{{- end }}
{{- define "ferry-data-plane.clientSecretSecret" -}}
{{- if .Values.dataPlane.clientSecretSecretName }}{{ .Values.dataPlane.clientSecretSecretName }}{{ else }}{{ include "ferry-data-plane.fullname" . }}-credentials{{ end }}
{{- end }}

{{/*
The environment variables the storage and secrets-manager blocks name: each `…SecretKey`
value is both the Secret's key and the variable's name (as the data plane reads them).
*/}}
{{- define "ferry-data-plane.blockSecretEnv" -}}
{{- $seen := dict }}
{{- range $block := list .Values.storage .Values.secretsManager }}
{{- if $block }}
{{- $secret := $block.secretName }}
{{- range $sectionName, $section := $block }}
{{- if kindIs "map" $section }}
{{- range $field, $key := $section }}
{{- if and (hasSuffix "SecretKey" $field) $key $secret (not (hasKey $seen $key)) }}
{{- $_ := set $seen $key true }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
