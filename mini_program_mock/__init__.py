"""The world outside the platform, runnable on loopback.

Sandbox WeChat login, access tokens and subscribe messages, WeChat Pay v2 and Alipay
gateways (template messages included) speaking the real wire protocols, a sandbox HIS
that announces its bills to the platform, the /sandbox/ control API and a scripted patient.
It never imports the platform: it only talks HTTP.
"""
