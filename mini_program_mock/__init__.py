"""The world outside the platform, runnable on loopback.

Sandbox WeChat login, WeChat Pay v2 and Alipay gateways speaking the real wire
protocols, a sandbox HIS, the /sandbox/ control API and a scripted patient.
It never imports the platform: it only talks HTTP.
"""
