#!/bin/sh
# One HTTP/1.0-style exchange on stdin/stdout (run by `nc -ll -p 80 -e` in an AP's netns).
#   /generate_204  -> 204 No Content, or on the captive-portal AP (HWSIM_PORTAL=1)
#                     302 to http://$HWSIM_AP_IP/portal
#   /portal        -> 200 small HTML "captive portal" page
#   anything else  -> 200 small HTML index naming the AP
cr=$(printf '\r')
read -r method path _
path=${path%"$cr"}
while read -r line; do line=${line%"$cr"}; [ -z "$line" ] && break; done
echo "$(date +%T) $method $path" >> "${HWSIM_HTTP_LOG:-/dev/null}"

reply() { # status, content-type, body, [extra header]
  printf 'HTTP/1.1 %s\r\nServer: hwsim-lab\r\nConnection: close\r\nContent-Length: %d\r\n' "$1" "${#3}"
  [ -n "$2" ] && printf 'Content-Type: %s\r\n' "$2"
  [ -n "$4" ] && printf '%s\r\n' "$4"
  printf '\r\n%s' "$3"
}
case "$path" in
  /generate_204*)
    if [ "$HWSIM_PORTAL" = 1 ]; then
      reply "302 Found" "" "" "Location: http://$HWSIM_AP_IP/portal"
    else
      reply "204 No Content" "" ""
    fi ;;
  /portal*)
    reply "200 OK" "text/html" "<html><body><h1>hwsim lab captive portal ($HWSIM_AP)</h1></body></html>
" ;;
  *)
    reply "200 OK" "text/html" "<html><body><h1>hwsim lab AP $HWSIM_AP ($HWSIM_AP_IP)</h1></body></html>
" ;;
esac
