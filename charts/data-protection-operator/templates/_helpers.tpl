{{- define "dpo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dpo.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "dpo.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "dpo.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "dpo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dpo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dpo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "dpo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: data-protection-operator
{{- end }}

{{- define "dpo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dpo.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Verbs on Secrets: read always (drift repair watches them); when allowed, write with
server-side apply (authorized as create where the Secret does not exist yet) and delete
(Orphan + Delete).
*/}}
{{- define "dpo.secretVerbs" -}}
{{- if .Values.rbac.secrets.write }}["get", "list", "watch", "create", "patch", "delete"]
{{- else }}["get", "list", "watch"]
{{- end }}
{{- end }}

{{/*
Rules of the ProtectedSecret controller where it works (every namespace, or each of
rbac.secrets.namespaces): its objects, the Secrets they write, the workloads they restart.
*/}}
{{- define "dpo.protectedSecretRules" -}}
- apiGroups: ["dpo.dev"]
  resources: ["protectedsecrets"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["dpo.dev"]
  resources: ["protectedsecrets/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: {{ include "dpo.secretVerbs" . }}
{{- if .Values.rbac.rolloutRestart }}
# A paused Deployment is read first: it would roll nothing out.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "patch"]
- apiGroups: ["apps"]
  resources: ["statefulsets", "daemonsets"]
  verbs: ["patch"]
- apiGroups: ["argoproj.io"]
  resources: ["rollouts"]
  verbs: ["patch"]
{{- end }}
{{- end }}
