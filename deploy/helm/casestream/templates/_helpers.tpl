{{/* Names, labels and the pod pieces every role shares. */}}
{{- define "casestream.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "casestream.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "casestream.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "casestream.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "casestream.secretName" -}}
{{ include "casestream.fullname" . }}-secrets
{{- end -}}

{{/* The environment of every role: the shared ConfigMap, the secrets, the built-in issuer's files if chosen. */}}
{{- define "casestream.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "casestream.fullname" . }}-config
env:
  - name: CASESTREAM_POSTGRES_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ .Values.postgres.existingSecret | default (include "casestream.secretName" .) }}
        key: postgres-password
  - name: CASESTREAM_S3_ACCESS_KEY
    valueFrom:
      secretKeyRef:
        name: {{ .Values.s3.existingSecret | default (include "casestream.secretName" .) }}
        key: s3-access-key
  - name: CASESTREAM_S3_SECRET_KEY
    valueFrom:
      secretKeyRef:
        name: {{ .Values.s3.existingSecret | default (include "casestream.secretName" .) }}
        key: s3-secret-key
  - name: CASESTREAM_OIDC_CLIENT_SECRET
    valueFrom:
      secretKeyRef:
        name: {{ include "casestream.secretName" . }}
        key: oidc-client-secret
{{- end -}}

{{- define "casestream.volumeMounts" -}}
volumeMounts:
  - name: data
    mountPath: /var/lib/casestream
  - name: tmp
    mountPath: /tmp
{{- if .Values.builtinIssuer.existingSecret }}
  - name: issuer
    mountPath: /var/run/casestream
    readOnly: true
{{- end }}
{{- end -}}

{{- define "casestream.volumes" -}}
volumes:
  - name: data
    emptyDir: {}
  - name: tmp
    emptyDir: {}
{{- if .Values.builtinIssuer.existingSecret }}
  - name: issuer
    secret:
      secretName: {{ .Values.builtinIssuer.existingSecret }}
{{- end }}
{{- end -}}
