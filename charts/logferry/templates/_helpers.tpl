{{/* The objects' base name: the release name, or <release>-logferry when the release name does not contain
"logferry" (`helm install logferry` gives `logferry`, the names k8s/ uses). */}}
{{- define "logferry.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* k8s/'s two labels plus the instance: two releases in one cluster never select each other's pods. */}}
{{- define "logferry.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{- define "logferry.labels" -}}
{{ include "logferry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "logferry.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "logferry.fullname" .) -}}
{{- end -}}

{{- define "logferry.secretName" -}}
{{- .Values.credentials.existingSecret | default (printf "%s-elasticsearch" (include "logferry.fullname" .)) -}}
{{- end -}}

{{/* Sizing (docs/deploy.md): old space = 3 x budget + 64 MiB; limit = old space + budget + 128 MiB, rounded up
to a multiple of 128 MiB; request = old space. */}}
{{- define "logferry.oldSpaceMiB" -}}
{{- add (mul 3 (int .Values.memory.bufferMiB)) 64 -}}
{{- end -}}

{{- define "logferry.memoryLimitMiB" -}}
{{- $raw := add (int (include "logferry.oldSpaceMiB" .)) (int .Values.memory.bufferMiB) 128 -}}
{{- mul (div (add $raw 127) 128) 128 -}}
{{- end -}}

{{- define "logferry.resources" -}}
{{- $res := deepCopy .Values.resources -}}
{{- $requests := get $res "requests" | default dict -}}
{{- $limits := get $res "limits" | default dict -}}
{{- if not (hasKey $requests "memory") -}}
{{- $_ := set $requests "memory" (printf "%sMi" (include "logferry.oldSpaceMiB" .)) -}}
{{- end -}}
{{- if not (hasKey $limits "memory") -}}
{{- $_ := set $limits "memory" (printf "%sMi" (include "logferry.memoryLimitMiB" .)) -}}
{{- end -}}
{{- $_ := set $res "requests" $requests -}}
{{- $_ := set $res "limits" $limits -}}
{{- toYaml $res -}}
{{- end -}}

{{/* The agent's config file: values.config with the keys the chart derives from other values. Refuses what
would contradict them, and host paths the agent could not see, with one line naming the value to change. */}}
{{- define "logferry.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- range $key := list "stateDir" "maxBufferBytes" "workers" -}}
{{- if hasKey $cfg $key -}}
{{- fail (printf "config.%s is set by the chart: use the value %s instead" $key (get (dict "stateDir" "hostPaths.state" "maxBufferBytes" "memory.bufferMiB" "workers" "workers") $key)) -}}
{{- end -}}
{{- end -}}
{{- $http := get $cfg "http" | default dict -}}
{{- if hasKey $http "addr" -}}
{{- fail "config.http.addr is set by the chart: use the values http.host and http.port instead" -}}
{{- end -}}
{{- $output := get $cfg "output" | default dict -}}
{{- range $key := list "es" "os" "type" "index" -}}
{{- if hasKey $output $key -}}
{{- fail (printf "config.output.%s is set by the chart: use the values output.type, output.urls and output.index instead" $key) -}}
{{- end -}}
{{- end -}}
{{- $podsDir := get $cfg "podsDir" | default "/var/log/pods" -}}
{{- $logs := trimSuffix "/" .Values.hostPaths.logs -}}
{{- if not (or (eq $podsDir $logs) (hasPrefix (printf "%s/" $logs) $podsDir)) -}}
{{- fail (printf "config.podsDir %s is not under hostPaths.logs %s: the agent would see an empty directory; make hostPaths.logs a parent of it" $podsDir .Values.hostPaths.logs) -}}
{{- end -}}
{{- $shutdownMs := get $cfg "shutdownTimeoutMs" | default 25000 -}}
{{- if le (mul (int .Values.terminationGracePeriodSeconds) 1000) (int $shutdownMs) -}}
{{- fail (printf "terminationGracePeriodSeconds %d must exceed config.shutdownTimeoutMs (%d ms), or the kubelet kills the agent before it saves its checkpoints" (int .Values.terminationGracePeriodSeconds) (int $shutdownMs)) -}}
{{- end -}}
{{- $_ := set $cfg "stateDir" .Values.hostPaths.state -}}
{{- $_ := set $cfg "maxBufferBytes" (printf "%dMiB" (int .Values.memory.bufferMiB)) -}}
{{- $_ := set $cfg "workers" .Values.workers -}}
{{- $_ := set $http "addr" (printf "%s:%d" .Values.http.host (int .Values.http.port)) -}}
{{- $_ := set $cfg "http" $http -}}
{{- if eq .Values.output.type "opensearch" -}}
{{- if not .Values.output.urls -}}
{{- fail "output.type opensearch needs output.urls: the OpenSearch nodes' URLs" -}}
{{- end -}}
{{- $_ := set $output "type" "opensearch" -}}
{{- $_ := set $output "os" .Values.output.urls -}}
{{- else -}}
{{- $_ := set $output "es" .Values.output.urls -}}
{{- end -}}
{{- $_ := set $output "index" .Values.output.index -}}
{{- $_ := set $cfg "output" $output -}}
{{- toYaml $cfg -}}
{{- end -}}
