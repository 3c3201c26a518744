{{/* A role without an HTTP port (relay, worker, publisher, process worker): it exits on a fatal error and the
kubelet restarts it, so it needs no liveness probe; SIGTERM stops it cleanly (partitions move to the others). */}}
{{- define "casestream.background" -}}
{{- $root := .root -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "casestream.fullname" $root }}-{{ .role }}
  labels:
    {{- include "casestream.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .role }}
spec:
  {{- if .replicas }}
  replicas: {{ .replicas }}
  {{- end }}
  {{- if .recreate }}
  strategy:
    type: Recreate
  {{- end }}
  selector:
    matchLabels:
      {{- include "casestream.selector" (dict "root" $root "role" .role) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "casestream.selector" (dict "root" $root "role" .role) | nindent 8 }}
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    spec:
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: 30
      containers:
        - name: {{ .role }}
          image: {{ include "casestream.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: {{ toJson .args }}
          {{- include "casestream.env" $root | nindent 10 }}
          {{- with .extraEnv }}
            {{- toYaml . | nindent 12 }}
          {{- end }}
          resources:
            {{- toYaml .resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          {{- include "casestream.volumeMounts" $root | nindent 10 }}
      {{- include "casestream.volumes" $root | nindent 6 }}
{{- end -}}
